"""The shared option vocabulary (toolkit/cli/options.py, issue 17 step 4): one spelling per option in --help,
the old spellings still accepted but hidden, positional models still taken, closed sets refused in one line."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import onnx_graphs as g
from tests.helpers.models import tiny_onnx
from toolkit.cli.app import app
from toolkit.cli.options import OLD_SPELLINGS, Device, Target, Unpool, rename_old_spellings

runner = CliRunner()
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}


def _help(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def _one_line_error(args: list[str], message: str, code: int = 2) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert result.output.strip().splitlines() == [f"error: {message}"], result.output


@pytest.mark.parametrize(("command", "new", "old"), [
    ("bench", "--input-shape", "--shape"), ("demo", "--unpool", "--lowering"), ("demo", "--output", "--out"),
    ("train", "--output", "--out"), ("export-triton", "--plugin", "--plugin-lib"),
])
def test_help_shows_the_new_spelling_only(command: str, new: str, old: str) -> None:
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", _help(command).split("Examples:")[0]))
    assert new in options and old not in options


@pytest.mark.parametrize("command", ["export", "quantize", "build-engine", "eval"])
def test_model_option_documented_positional_hidden(command: str) -> None:
    out = _help(command)
    assert "--model" in out and "-m" in out and "Arguments" not in out and "old spelling" not in out


def test_old_spellings_still_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # each old spelling reaches the option it names: the error comes from that option's own check
    _one_line_error(["bench", "--shape", "1x3x33x48"], "--input-shape 1x3x33x48: H and W must be multiples of 8; "
                    "pad to 1x3x40x48")
    _one_line_error(["bench", "--shape=1x3x33x48"], "--input-shape 1x3x33x48: H and W must be multiples of 8; "
                    "pad to 1x3x40x48")
    _one_line_error(["demo", "--lowering", "masc"], "--unpool masc: valid choices: maxunpool, mask, plugin. "
                    "Did you mean 'mask'?")
    seen: dict = {}

    def plan_models(models, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr("toolkit.serve.triton_repo.plan_models", plan_models)
    runner.invoke(app, ["export-triton", "m.onnx", "-o", str(tmp_path / "repo"), "--plugin-lib", "lib.so"])
    assert seen["plugin_lib"] == "lib.so"
    result = runner.invoke(app, ["train", "--data", "synthetic", "--out", str(tmp_path / "run"), "--arch", "segnett"])
    assert result.output.strip() == "error: unknown model 'segnett': valid choices: enhanced, enhanced_s2, " \
                                    "segnet. Did you mean 'segnet'?"


def test_rename_old_spellings_only_where_the_command_has_the_option() -> None:
    known = {"--input-shape", "--output"}
    assert rename_old_spellings(["--shape", "1x3x8x8", "--out=o", "--lowering", "mask", "--", "--shape"], known) == \
        ["--input-shape", "1x3x8x8", "--output=o", "--lowering", "mask", "--", "--shape"]
    assert rename_old_spellings(["--out", "o"], {"--out", "--output"}) == ["--out", "o"]  # a real option wins
    assert set(OLD_SPELLINGS.values()) <= {"--input-shape", "--unpool", "--plugin", "--output"}


def test_positional_and_option_model(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    onnx_path = g.save(g.clean(), tmp_path / "m.onnx")
    for args in (["build-engine", "-m", str(onnx_path)], ["build-engine", str(onnx_path)],
                 ["build-engine", str(onnx_path), "--model", str(onnx_path)]):
        result = runner.invoke(app, [*args, "--shapes", "1x3x64x96", "--dry-run"])
        assert result.exit_code == 0 and f"plan: {tmp_path / 'm.engine'}" in result.output, result.output
    mask = tiny_onnx(tmp_path_factory, "mask")
    result = runner.invoke(app, ["quantize", "--model", str(mask), "--precision", "fp16", "-o",
                                 str(tmp_path / "h.onnx")])
    assert result.exit_code == 0 and (tmp_path / "h.onnx").is_file(), result.output
    _one_line_error(["quantize", "a.onnx", "-m", "b.onnx", "--precision", "fp16", "-o", "c.onnx"],
                    "two models given ('a.onnx' and --model 'b.onnx'): pass one")
    _one_line_error(["build-engine", "a.onnx", "-m", "b.onnx"], "two models given ('a.onnx' and --model 'b.onnx'): "
                    "pass one")
    _one_line_error(["quantize", "--precision", "fp16", "-o", "c.onnx"],
                    "no model given: pass --model MODEL.onnx (the fp32 export)")
    _one_line_error(["build-engine", "--dry-run"], "no model given: pass --model MODEL.onnx")


def test_closed_sets_refused_in_one_line_with_the_choices() -> None:
    _one_line_error(["quantize", "m.onnx", "--precision", "fp61", "-o", "o.onnx"],
                    "--precision fp61: valid choices: fp16, int8. Did you mean 'fp16'?")
    _one_line_error(["quantize", "m.onnx", "--precision", "int8", "--target", "cuda", "-o", "o.onnx"],
                    "--target cuda: valid choices: tensorrt, cpu.")
    _one_line_error(["export", "-o", "o.onnx", "--unpool", "masc"],
                    "--unpool masc: valid choices: maxunpool, mask, plugin. Did you mean 'mask'?")
    _one_line_error(["eval", "--data", "synthetic", "--device", "cdua"],
                    "--device cdua: valid choices: cpu, cuda, cuda:N, tensorrt. Did you mean 'cuda'?")
    _one_line_error(["eval", "--data", "synthetic", "--device", "cuda:x"],
                    "--device cuda:x: valid choices: cpu, cuda, cuda:N, tensorrt. Did you mean 'cuda:N'?")
    _one_line_error(["train", "--data", "synthetic", "--device", "tensorrt"],
                    "--device tensorrt: valid choices: cpu, cuda, cuda:N.")
    assert "[fp16|int8]" in _help("quantize") and "[tensorrt|cpu]" in _help("quantize")
    assert "[cpu|cuda|cuda:N|tensorrt]" in _help("bench") and "[cpu|cuda|cuda:N]" in _help("train")


def test_cuda_n_is_a_device(monkeypatch: pytest.MonkeyPatch, tiny: tuple[Path, Path]) -> None:
    """cuda:1 passes the option check; whether this PyTorch can use it is the runner's question (issue 16)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    result = runner.invoke(app, ["eval", "-m", str(tiny[0]), "--data", "synthetic", "--limit", "1",
                                 "--device", "cuda:1"])
    assert result.exit_code == 2 and result.output.strip().startswith("error: --device cuda:1: this PyTorch build")


def test_enums_match_the_library() -> None:
    from toolkit.backend.onnxrt.loader import DEVICES
    from toolkit.models.unpool import UNPOOL_MODES
    from toolkit.quant import TARGETS

    assert tuple(u.value for u in Unpool) == UNPOOL_MODES and tuple(t.value for t in Target) == TARGETS
    assert {d.value for d in Device} == set(DEVICES)
