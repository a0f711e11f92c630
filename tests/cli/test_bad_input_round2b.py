"""Bad input, round two (issue 25), second part: refusals that misled (§5), help and pipes (§6), figures (§7).
Each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import one_line_error, runner
from toolkit.cli.app import app


@pytest.fixture(scope="module")
def foreign_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's ONNX export with its input renamed 'data', as another exporter would name it."""
    import onnx

    from tests.helpers.models import tiny_onnx

    model = onnx.load(str(tiny_onnx(tmp_path_factory, "mask")))
    old = model.graph.input[0].name
    model.graph.input[0].name = "data"
    for node in model.graph.node:
        node.input[:] = ["data" if name == old else name for name in node.input]
    path = tmp_path_factory.mktemp("foreign") / "other.onnx"
    onnx.save(model, str(path))
    return path


def test_device_tensorrt_with_a_checkpoint_says_what_tensorrt_takes(tiny) -> None:
    """Was: '--device tensorrt: expected cpu, cuda or cuda:N; valid choices: cpu, cuda.' while --help lists it."""
    for args in (["infer", "-s", str(tiny[1]), "-m", str(tiny[0]), "--device", "tensorrt", "--no-progress"],
                 ["bench", "-m", str(tiny[0]), "--device", "tensorrt", "-n", "1", "--input-shape", "1x3x64x96"]):
        line = one_line_error(args)
        assert "tiny.safetensors is a PyTorch checkpoint" in line and "takes ONNX files" in line, line
        assert "valid choices: cpu, cuda" not in line


def test_candidate_with_an_unknown_at_precision_lists_the_precisions(tiny) -> None:
    """Was: "'enhanced-w16@fp8' is neither a model file nor a zoo model ... Did you mean 'enhanced-w16'?"."""
    for spec in ("enhanced-w16@fp8", f"{tiny[0]}@int4"):
        line = one_line_error(["parity", "-c", spec, "--data", "synthetic", "--limit", "1"])
        assert f"{spec}: '@{spec.rpartition('@')[2]}' is not a precision" in line, line
        assert "auto, fp32, fp16, bf16" in line


def test_teacher_or_init_given_an_onnx_file_says_what_it_takes(tmp_path, tiny_onnx_file) -> None:
    """Was: 'not a valid safetensors checkpoint (truncated or corrupt?): ... header too large' for a valid ONNX."""
    for option in ("--teacher", "--init"):
        line = one_line_error(["train", "--data", "synthetic", "--epochs", "1", option, str(tiny_onnx_file),
                          "--output", str(tmp_path / "run")])
        assert f"{option} {tiny_onnx_file}: an ONNX model" in line and "takes a .safetensors file" in line, line
        assert "corrupt" not in line
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tiny_onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.models import tiny_onnx

    return tiny_onnx(tmp_path_factory, "mask")


def test_onnx_of_another_input_name_is_explained_alike_and_early(tmp_path, tiny, foreign_onnx,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """parity failed after loading the reference with "runner 'onnxrt:other.onnx' expects inputs ['data'], got
    ['input']"; infer and eval failed at the first frame in those words too. Now one explanation, and parity gives it
    before the reference (the zoo default's 'model:' line) is touched."""
    from toolkit.data import write_synthetic_camvid

    data = write_synthetic_camvid(tmp_path / "data", {"val": 1}, size=(64, 96))
    words = "the model takes ['data'] and gives ['logits']; the toolkit feeds one tensor 'input'"
    import toolkit.compare

    def no_reference(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reference was loaded before the candidate was checked")

    monkeypatch.setattr(toolkit.compare, "compare_files", no_reference)
    for args in (["parity", "-c", str(foreign_onnx), "--data", str(data)],
                 ["eval", "-m", str(foreign_onnx), "--data", str(data)],
                 ["infer", "-s", str(tiny[1]), "-m", str(foreign_onnx), "--no-progress"]):
        line = one_line_error(args)
        assert f"error: {foreign_onnx}: {words}" in line, line


@pytest.mark.parametrize("option", ["--max-miou-drop", "--max-class-drop", "--max-band-drop"])
def test_negative_quantize_budgets_are_usage_errors(tmp_path, tiny_onnx_file, option: str) -> None:
    """A negative budget can never be met: it used to start a tuning run that ends as a failed check. (parity's
    negative --max-miou-drop/--min-agreement: tests/cli/test_bad_input_round2.py.)"""
    line = one_line_error(["quantize", str(tiny_onnx_file), "--precision", "int8", "-o", str(tmp_path / "q.onnx"),
                      option, "-1", "--tune-data", "synthetic"])
    assert f"Invalid value for '{option}'" in line and "greater than or equal to 0" in line, line
    assert not (tmp_path / "q.onnx").exists()


def _commands() -> list[str]:
    import typer.main

    return list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _commands())
def test_help_at_80_columns_keeps_option_names_and_examples_whole(command: str) -> None:
    """Rich's boxes cut names at 80 columns and in a pipe (CliRunner's output is no TTY): '--distill-weig…',
    '--bench-iterat…', and wrapped the examples across lines."""
    import typer.main

    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "…" not in out
    tokens = set(out.replace(",", " ").replace("/", " ").split())
    names = [n for p in cmd.params if not getattr(p, "hidden", False) for n in (*p.opts, *p.secondary_opts)]
    assert names and not [n for n in names if n not in tokens], [n for n in names if n not in tokens]
    epilog = (cmd.epilog or "").split("Examples:\n", 1)
    examples = [line.strip() for line in epilog[-1].splitlines() if line.strip()] if len(epilog) == 2 else []
    lines = {line.strip() for line in out.splitlines()}
    assert not [e for e in examples if e not in lines], out


def test_help_piped_through_a_real_process_keeps_names_whole() -> None:
    """The same through the entry point with stdout a pipe, as `toolkit train --help | less` sees it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "toolkit", "train", "--help"], capture_output=True, text=True,
                         env=env, timeout=120).stdout
    assert "--distill-weight" in out and "--no-channels-last" in out and "…" not in out, out
    options = out.split("Examples:")[0]  # the examples stay one line each, however long
    assert max(len(line) for line in options.splitlines()) <= 80, options


def _run_with_stdout_closed(args: list[str]) -> tuple[int, str]:
    """The real entry point, its stdout a pipe whose reader left before the first write (`| head -0`)."""
    import os
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "toolkit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=300), err


def test_a_closed_stdout_pipe_is_exit_0_and_the_files_are_written(tmp_path, tmp_path_factory,
                                                                   tiny_onnx_file) -> None:
    """`toolkit parity ... | head -1` exited 1 (Rich's SystemExit on the broken pipe) before --json/--report."""
    from tests.helpers.models import tiny_checkpoint
    from toolkit.data import write_synthetic_camvid

    data = write_synthetic_camvid(tmp_path / "data", {"val": 2}, size=(64, 96))
    ckpt = tiny_checkpoint(tmp_path_factory)
    parity = ["parity", "--reference", str(ckpt), "-c", str(tiny_onnx_file), "--data", str(data),
              "--json", str(tmp_path / "p.json"), "--report", str(tmp_path / "p.html")]
    evaluate = ["eval", "-m", str(ckpt), "--data", str(data), "--json", str(tmp_path / "e.json")]
    for args in (parity, evaluate, ["models"]):
        code, err = _run_with_stdout_closed(args)
        assert code == 0 and "error" not in err.lower() and "Exception ignored" not in err, (args, err)
    assert (tmp_path / "p.json").stat().st_size and (tmp_path / "p.html").stat().st_size
    assert (tmp_path / "e.json").stat().st_size


def test_eval_json_records_the_model_and_the_data(tmp_path, tmp_path_factory) -> None:
    """eval --json had the scores only; parity's JSON names the reference (sha256) and the data set."""
    import json

    from tests.helpers.models import tiny_checkpoint
    from toolkit.data import write_synthetic_camvid
    from toolkit.files import file_sha256

    data = write_synthetic_camvid(tmp_path / "data", {"val": 2}, size=(64, 96))
    ckpt = tiny_checkpoint(tmp_path_factory)
    result = runner.invoke(app, ["eval", "-m", str(ckpt), "--data", str(data), "--json", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["model"]["name"] == ckpt.name and report["model"]["sha256"] == file_sha256(ckpt)
    assert report["model"]["path"] == str(ckpt) and report["model"]["zoo"] is False
    assert report["dataset"]["root"] == str(data) and report["dataset"]["split"] == "val"
    assert report["dataset"]["images"] == report["num_images"] == 2


def test_models_verify_says_what_it_verified() -> None:
    """--verify printed the same table as without it: nothing said what was checked."""
    from toolkit.zoo import list_zoo

    result = runner.invoke(app, ["models", "--verify"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("verified ")]
    assert len(lines) == len(list_zoo())
    for entry, line in zip(list_zoo(), lines, strict=True):
        assert line.startswith(f"verified {entry.name}: {entry.path.name} present, sha256 {entry.sha256[:12]}")
        assert "recomputed and equal to zoo.json's" in line and "loaded into the architecture as safetensors" in line


class _ScriptedRunner:
    """Stand-in factory for a runner whose every call takes the next scripted latency on a fake clock."""

    @staticmethod
    def make(latencies_ms: list[float], clock: list[float]):
        import itertools

        import numpy as np

        from toolkit.backend.base import BaseRunner
        from toolkit.core.description import ModelDescription

        script = itertools.cycle(latencies_ms)

        class Scripted(BaseRunner):
            backend = "fake"

            def _activate_impl(self) -> ModelDescription:
                return ModelDescription()

            def _infer_impl(self, feed: dict) -> dict:
                clock[0] += next(script) / 1e3
                return {"logits": np.zeros((1, 2, 8, 8), np.float32)}

        return Scripted(name="scripted").activate()


@pytest.mark.parametrize(("latencies", "noisy"), [
    ([10.0, 10.2, 10.1, 9.9, 10.3], False),  # an idle machine: a few per cent
    ([10.0] * 8 + [60.0, 90.0], True),  # a busy one: the slowest tenth of calls 6-9x slower (p90/p50)
    ([10.0, 25.0, 26.0, 27.0, 28.0], True),  # every call but the fastest held up (p50/min)
])
def test_bench_warns_when_the_spread_says_the_machine_was_busy(latencies: list[float], noisy: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10x spread used to print as plain figures. The warning is in the table and `noise` in the JSON."""
    import types

    import toolkit.bench as bench

    clock = [0.0]
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0], sleep=lambda s: None))
    (result,) = bench.bench_runners([_ScriptedRunner.make(latencies, clock)], (1, 3, 8, 8), warmup=0,
                                    iterations=10 * len(latencies), rounds=1)
    assert result.noise is not None and result.noise["noisy"] is noisy
    assert result.as_dict()["noise"]["thresholds"] == {"p90_over_p50": bench.NOISY_P90_OVER_P50,
                                                       "p50_over_min": bench.NOISY_P50_OVER_MIN}
    warned = [line for line in bench.format_table([result]).splitlines() if line.startswith("warning: scripted")]
    assert len(warned) == (1 if noisy else 0)


def test_a_demo_candidate_failing_parity_is_not_a_failed_step(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's exit code follows its steps; a candidate beyond its tolerance is a result. README says so
    next to the exit-code table (it did not: '1 ... a demo step' read as if a FAIL row were one)."""
    import toolkit.demo
    from toolkit.demo_context import DemoReport, StepResult

    def fake_demo(options, say=None):
        steps = [StepResult(n, "ok", 0.0) for n in ("clip", "export", "quantize", "parity", "speed", "video")]
        return DemoReport(str(options.out_dir), "m", steps=steps, chosen="fp32",
                          candidates=[{"name": "int8", "parity": {"passed": False}}])

    monkeypatch.setattr(toolkit.demo, "run_demo", fake_demo)
    result = runner.invoke(app, ["demo", "--output", str(tmp_path / "d"), "--synthetic"])
    assert result.exit_code == 0, result.output
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table_end = readme.index("| 130 |")
    assert "a candidate that fails parity" in readme[table_end:table_end + 1200]


@pytest.mark.parametrize(("load", "expected"), [(0.1, 2), (1.2, 1), (3.0, 1)])
def test_default_cpu_threads_leave_busy_cores_alone(load: float, expected: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch eager took every core by default: 2 threads on a loaded 2-core machine ran 3-8x slower than 1."""
    import os

    from toolkit.backend.factory import default_torch_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert default_torch_threads("cpu", None) == expected
    assert default_torch_threads("cpu", 2) == 2 and default_torch_threads("cuda", None) is None
