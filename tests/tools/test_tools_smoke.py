"""Every script of tools/ still runs: each doc-regenerating one on a tiny case (seconds, not the docs'
hours), every script's --help (its imports resolve), the shell scripts parse, and every tools/ path the
docs cite exists. The numbers are not checked: they are measurements of this machine."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.tools import REPO, TOOLS, load_tool

RunTool = Callable[..., None]
SCRIPTS = sorted(str(p.relative_to(TOOLS)) for p in TOOLS.rglob("*.py"))
LOGS = REPO / "docs" / "logs"


@pytest.mark.parametrize("rel", SCRIPTS)
def test_help(rel: str, run_tool: RunTool, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        run_tool(rel, "--help")
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("script", sorted(TOOLS.rglob("*.sh")), ids=lambda p: p.name)
def test_shell_scripts_parse(script: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_cited_tool_exists_and_is_listed() -> None:
    """A moved or renamed script leaves no stale command in the docs, the code or the other tools."""
    cited: dict[str, set[str]] = {}
    texts = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "toolkit").rglob("*.py"),
             REPO / "toolkit" / "assets" / "zoo.json",
             *(p for p in TOOLS.rglob("*") if p.suffix in (".py", ".sh", ".md"))]
    for path in texts:
        for ref in re.findall(r"\btools/[\w/]+\.(?:py|sh)\b", path.read_text(errors="replace")):
            cited.setdefault(ref, set()).add(str(path.relative_to(REPO)))
    missing = {ref: sorted(where) for ref, where in cited.items() if not (REPO / ref).is_file()}
    assert not missing, f"cited but not in tools/: {missing}"
    readme = (TOOLS / "README.md").read_text()
    unlisted = [s for s in [*SCRIPTS, *(p.name for p in TOOLS.glob("*.sh"))] if f"`{s}`" not in readme]
    assert not unlisted, f"tools/README.md has no line for {unlisted}"


def test_bench_table(run_tool: RunTool, tiny_ckpt: Path, tiny_mask_onnx: Path, tiny_maxunpool_onnx: Path,
                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Build (the export itself is the session's cached one), bench every variant, infer, targets, JSON."""
    import toolkit.export
    from toolkit.core.onnx_file import load_onnx

    exported = {"maxunpool": tiny_maxunpool_onnx, "mask": tiny_mask_onnx}
    monkeypatch.setattr(toolkit.export, "export_checkpoint", lambda path, unpool: load_onnx(exported[unpool]))
    run_tool("bench_table.py", "--model", tiny_ckpt, "--out", tmp_path, "--shape", "1x3x64x96", "--threads", 2,
             "--iterations", 2, "--rounds", 1, "--clip-frames", 3, "--calib", 2, "--repeats", 1)
    out = capsys.readouterr().out
    assert "## targets" in out and "| onnxrt int8 (mask) | 2 x 1 |" in out
    report = json.loads((tmp_path / "bench.json").read_text())
    names = [r["name"] for r in report["bench"]]
    assert names[0] == "pytorch fp32 (eager)" and "onnxrt int8 (maxunpool, graph opt all)" in names
    assert all(r["iterations"] == 2 and r["throughput_fps"] > 0 for r in report["bench"])
    assert [r["streams"] for r in report["bench_streams"]] == [2] * 4
    assert len(report["infer"]) == 4


def test_profile_onnx(run_tool: RunTool, tiny_mask_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("profile_onnx.py", tiny_mask_onnx, "--shape", "1x3x64x96", "--threads", 1, "--runs", 2, "--top", 3)
    out = capsys.readouterr().out
    assert re.search(r"tiny_mask\.onnx: [\d.]+ ms per run \(median wall\), kernels [\d.]+ ms", out)
    assert "| Conv |" in out


def test_ort_op_costs(run_tool: RunTool, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("ort_op_costs.py", "--shape", "2x1x8x8", "--runs", 2)
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ") and "ms |" not in ln]
    assert [r.split(" | ")[0] for r in rows][:2] == ["| Mul", "| Equal"] and len(rows) == 7


def test_pipeline_costs(run_tool: RunTool, tiny_mask_onnx: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("pipeline_costs.py", "--size", "16x24", "--frames", 6, "--repeats", 1, "--model", tiny_mask_onnx)
    out = capsys.readouterr().out
    for section in ("## per-frame kernels", "## one-time and placement costs", "## first written frame",
                    "## pipeline CPU per frame"):
        assert section in out
    assert "| mp4 out, overlay, legend, HUD (as toolkit infer) |" in out


def test_class_weights(run_tool: RunTool, synthetic_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("class_weights.py", synthetic_dir)
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 6 and rows[0].startswith("| sky |")


def test_camvid_stats(run_tool: RunTool, synthetic_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("camvid_stats.py", synthetic_dir)
    out = capsys.readouterr().out
    mean, std = (re.search(rf"{k} = \(([\d.]+), ([\d.]+), ([\d.]+)\)", out) for k in ("mean", "std"))
    assert mean and std and all(0 < float(v) < 1 for v in (*mean.groups(), *std.groups()))


def test_log_tables(run_tool: RunTool, capsys: pytest.CaptureFixture[str]) -> None:
    logs = sorted(LOGS.glob("*.train_log.csv"))
    run_tool("log_tables.py", *logs, "--epochs", "1,2", "--thresholds", "0.5", "--per-class", "--last", 2)
    out = capsys.readouterr().out
    assert "| run | 1 | 2 |" in out and "train loss <= 0.5:" in out and "| run | epoch | Sky |" in out
    assert out.count("mean val mIoU of the last 2 epochs") == len(logs)


def _runs_from_logs(root: Path) -> list[Path]:
    """Run folders holding the committed train logs, as `toolkit train --out` leaves them."""
    runs = []
    for log in sorted(LOGS.glob("*.train_log.csv")):
        run = root / log.name.removesuffix(".train_log.csv")
        run.mkdir()
        shutil.copy(log, run / "train_log.csv")
        runs.append(run)
    return runs


def test_plot_curves(run_tool: RunTool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = _runs_from_logs(tmp_path)
    run_tool("plot_curves.py", *runs, "--out", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "| student_w16_180 |" in capsys.readouterr().out


def test_results_table(run_tool: RunTool, tiny_ckpt: Path, synthetic_dir: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    (run,) = _runs_from_logs(tmp_path)[:1]
    shutil.copy(tiny_ckpt, run / "last.safetensors")
    run_tool("results_table.py", run, "--data", synthetic_dir, "--json", tmp_path / "scores.json")
    out = capsys.readouterr().out
    assert "| model + loss | sky | road |" in out and "| enhanced + ? |" in out
    assert 0.0 <= json.loads((tmp_path / "scores.json").read_text())[str(run)]["scores"]["miou"] <= 1.0


def test_frontier_replot(run_tool: RunTool, tmp_path: Path) -> None:
    """The plot and the trained-model match (the timing run is `toolkit infer` on exported candidates)."""
    import torch

    from toolkit.checkpoint import save_checkpoint
    from toolkit.core.meta import ModelMeta
    from toolkit.data import synthetic_info
    from toolkit.models import create_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "trained.safetensors", create_model("enhanced", num_classes=3, width=4),
                           ModelMeta("enhanced", 4, synthetic_info(3), input_size=(64, 96),
                                     provenance={"val_miou": 0.4}))
    rows = [{"width": 4, "size": "64x96", "precision": p, "gflops": 0.01, "fps": f, "fps_runs": [f]}
            for p, f in (("fp32", 50.0), ("int8", 80.0))]
    (tmp_path / "frontier.json").write_text(json.dumps({"rows": rows}))
    run_tool("frontier.py", "--out", tmp_path, "--replot", "--miou", f"tiny={ckpt}")
    saved = json.loads((tmp_path / "frontier.json").read_text())
    assert [(t["name"], t["int8_fps"]) for t in saved["trained"]] == [("tiny", 80.0)]
    assert (tmp_path / "frontier.png").is_file()


def test_bench_train_step(run_tool: RunTool, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("bench_train_step.py", "--width", 4, "--batch", 1, "--hw", "16x16", "--iters", 1, "--warmup", 0,
             "--dtypes", "fp32", "--channels-last", "0,1")
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [ln["channels_last"] for ln in lines] == [False, True] and all(ln["median_step_s"] > 0 for ln in lines)
    run_tool("bench_train_step.py", "--width", 4, "--batch", 1, "--hw", "16x16", "--iters", 1, "--warmup", 0,
             "--dtypes", "fp32", "--unpool", "maxunpool,mask", "--sync", "step,end")
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [(ln["unpool"], ln["sync"]) for ln in lines] == [("maxunpool", "step"), ("maxunpool", "end"),
                                                            ("mask", "step"), ("mask", "end")]


def test_parity_doc_render(run_tool: RunTool, capsys: pytest.CaptureFixture[str]) -> None:
    run_tool("parity_doc.py", "--render-only", REPO / "docs" / "parity_report.json")
    out = capsys.readouterr().out
    assert out.count("\n|") > 5


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="needs Debian's chromium")
def test_report_screenshots(run_tool: RunTool, tmp_path: Path) -> None:
    run_tool("report_screenshots.py", REPO / "docs" / "parity_report.html", "--width", 400, "--height", 300,
             "--crop", "top:0:100", "--out", tmp_path / "shot")
    assert (tmp_path / "shot_top.png").read_bytes()[:4] == b"\x89PNG"


def test_soak_infer(run_tool: RunTool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real `toolkit infer` command in a child process, its memory sampled."""
    run_tool("soak_infer.py", "--frames", 6, "--size", "32x48", "--out", tmp_path, "--every", 0.2, "--warm-s", 0)
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["exit_code"] == 0, summary["stderr"]
    assert summary["frames_written"] == 6


def test_loadtest_in_process(tiny_ckpt: Path) -> None:
    """The in-process half of the load test (the served half needs the serve extra: tests/serve)."""
    import numpy as np

    loadtest = load_tool("loadtest.py")
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    inproc = loadtest.InProcess(str(tiny_ckpt), frame, max_batch=2, threads=1)
    try:
        got = inproc.measure(batch=2, calls=2, cap_s=30.0)
    finally:
        inproc.close()
    assert got["handler"][0] == got["runner"][0] == 4
    assert got["handler"][1] > 0 and got["runner"][1] > 0
