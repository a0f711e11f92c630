"""The CLI's option defaults are the library's: what ``toolkit X`` does without an option is what the library
function does without that argument (toolkit/core/defaults.py holds the values both read).

Each pair names a command function and the library callable or dataclass it hands the option to; a
parameter with the same name (or the name given in RENAMED) must have the same default. TrainConfig is
compared the same way, from the train command's options: the training package is imported only when that
command runs, so its defaults cannot feed the options and this test keeps the two equal instead.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from toolkit.core import defaults


def cli_defaults(command: Callable[..., Any]) -> dict[str, Any]:
    """Parameter -> default of a Typer command function (the value inside its typer.Option/Argument)."""
    out = {}
    for name, p in inspect.signature(command).parameters.items():
        info = p.default
        value = getattr(info, "default", info)
        if value is not ... and value is not inspect.Parameter.empty:
            out[name] = value.value if hasattr(value, "value") and not isinstance(value, int | float | str) else value
    return out


def library_defaults(target: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(target):
        return {f.name: f.default for f in dataclasses.fields(target) if f.default is not dataclasses.MISSING}
    return {n: p.default for n, p in inspect.signature(target).parameters.items()
            if p.default is not inspect.Parameter.empty}


# options whose CLI default means something else on purpose, with the reason (kept as few as possible)
DIFFER = {
    "target": "None: quantize_file resolves it (int8: tensorrt; fp16 refuses a target given)",
    "exclude": "the CLI's comma list '' is the library's ()",
    "workers": "0: the CLI picks 2 for files, 1 for live sources (toolkit infer --help)",
    "precision": "serve: 'auto' picks fp16/bf16 for a PyTorch checkpoint; ServeConfig(precision=None) is fp32",
}


def _pairs() -> list[tuple[str, Callable[..., Any], Any, dict[str, str], int]]:
    """(id, command, library target, {cli name: library name}, how many names must match at least)."""
    from toolkit.bench import bench_runners
    from toolkit.cli.bench import bench
    from toolkit.cli.export import export
    from toolkit.cli.export_triton import export_triton
    from toolkit.cli.infer import infer
    from toolkit.cli.parity import parity
    from toolkit.cli.quantize import quantize
    from toolkit.cli.serve import serve
    from toolkit.compare.drift import DriftOptions
    from toolkit.export.onnx_export import export_file
    from toolkit.quant.int8 import calibrate, quantize_int8
    from toolkit.quant.plan_file import quantize_planned
    from toolkit.quant.quantize_file import Calibration
    from toolkit.serve.server import ServeConfig
    from toolkit.serve.triton_repo import config_text, plan_models
    from toolkit.video.overlay import OverlayStyle
    from toolkit.video.run import infer_video

    calib = {"calib_method": "method", "calib_split": "split"}
    return [
        ("quantize/Calibration", quantize, Calibration, calib, 3),
        ("quantize/quantize_int8", quantize, quantize_int8, {"calib_method": "method"}, 3),
        ("quantize/calibrate", quantize, calibrate, {}, 1),
        ("quantize/quantize_planned", quantize, quantize_planned, {}, 2),
        ("export/export_file", export, export_file, {}, 1),
        ("bench/bench_runners", bench, bench_runners, {}, 4),
        ("parity/DriftOptions", parity, DriftOptions, {"band": "band_px", "worst": "worst_frames"}, 2),
        ("infer/OverlayStyle", infer, OverlayStyle, {}, 1),
        ("infer/infer_video", infer, infer_video, {}, 1),
        ("serve/ServeConfig", serve, ServeConfig, {"drain_timeout": "drain_timeout_s"}, 10),
        ("export-triton/plan_models", export_triton, plan_models, {}, 2),
        ("export-triton/config_text", export_triton, config_text, {}, 3),
    ]


def _compare(command: Callable[..., Any], target: Any, renamed: dict[str, str],
             convert: Callable[[str, Any], Any] = lambda _n, v: v) -> tuple[list[str], list[str]]:
    cli, lib = cli_defaults(command), library_defaults(target)
    matched, wrong = [], []
    for name, value in cli.items():
        other = renamed.get(name, name)
        if other in lib and name not in DIFFER:
            if isinstance(value, str) and isinstance(lib[other], tuple):
                value = tuple(v for v in value.split(",") if v)  # a comma list option
            matched.append(name)
            if convert(name, value) != lib[other]:
                wrong.append(f"--{name.replace('_', '-')} {value!r} vs {other}={lib[other]!r}")
    return matched, wrong


@pytest.mark.parametrize("case", _pairs(), ids=lambda c: c[0])
def test_cli_option_defaults_equal_the_library_defaults(case: tuple) -> None:
    _id, command, target, renamed, at_least = case
    matched, wrong = _compare(command, target, renamed)
    assert not wrong, f"{_id}: {wrong}"
    assert len(matched) >= at_least, f"{_id}: only {matched} compared; did an option or argument get renamed?"


def test_the_input_size_is_written_once() -> None:
    from toolkit.cli.options import input_shape_option
    from toolkit.core.meta import ModelMeta
    from toolkit.video.sample import make_sample_clip

    assert input_shape_option().default == defaults.INPUT_SHAPE
    assert defaults.INPUT_SHAPE.split("x")[2:] == [str(v) for v in defaults.INPUT_SIZE]
    assert library_defaults(ModelMeta)["input_size"] == defaults.INPUT_SIZE
    assert library_defaults(make_sample_clip)["size"] == defaults.INPUT_SIZE


def test_the_percentile_toolkit_quantize_uses_is_the_library_default() -> None:
    """toolkit quantize always passed 99.99 down to calibrate(); calibrate's own default said 99.999 (unused)."""
    from toolkit.cli.quantize import quantize
    from toolkit.quant.int8 import calibrate, quantize_int8
    from toolkit.quant.quantize_file import Calibration

    values = {cli_defaults(quantize)["percentile"], library_defaults(Calibration)["percentile"],
              library_defaults(quantize_int8)["percentile"], library_defaults(calibrate)["percentile"]}
    assert values == {defaults.CALIB_PERCENTILE}


def _train_value(name: str, value: Any) -> Any:
    if name == "crop":  # ("352x480",) after the comma split
        return tuple(int(v) for v in value[0].split("x"))
    if name == "scale_range":  # already split at the commas
        return tuple(float(v) for v in value)
    return value


def test_train_options_equal_train_config() -> None:
    from toolkit.cli.train import train_command, training_package

    config = training_package().TrainConfig
    matched, wrong = _compare(train_command, config, {"compile_net": "compile"}, _train_value)
    assert not wrong, wrong
    assert len(matched) >= 30, matched
    assert cli_defaults(train_command)["no_progress"] is (not library_defaults(config)["progress"])


def test_the_check_sees_a_drifted_default() -> None:
    import typer

    def command(percentile: float = typer.Option(99.9), other: int = typer.Option(1)) -> None: ...

    @dataclasses.dataclass
    class Lib:
        percentile: float = 99.99
        other: int = 1

    assert _compare(command, Lib, {}) == (["percentile", "other"], ["--percentile 99.9 vs percentile=99.99"])


def test_the_options_that_differ_on_purpose_still_exist() -> None:
    """DIFFER names real options (an entry left behind after a rename would hide nothing, but mislead)."""
    from toolkit.cli.infer import infer
    from toolkit.cli.quantize import quantize
    from toolkit.cli.serve import serve

    names = set(cli_defaults(quantize)) | set(cli_defaults(infer)) | set(cli_defaults(serve))
    assert set(DIFFER) <= names
