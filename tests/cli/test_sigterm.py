"""SIGTERM is Ctrl-C (issue 25): ``docker stop``, systemd and ``timeout`` send SIGTERM, which used to kill a run
with exit 143, no video, no --json and a hidden ``.out.partial.mp4`` left behind. Each command now takes the
Ctrl-C path on SIGTERM (exit 130, outputs closed and complete). The subprocess tests signal a running command
once a file it writes shows that it is under way, not after a fixed sleep."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from toolkit.cli.common import handle_errors

REPO = Path(__file__).resolve().parents[2]
INTERRUPTED = 130  # README's exit-code table: what Ctrl-C gives


def _toolkit(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "toolkit", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _term_when(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 120.0) -> tuple[str, str]:
    """Send SIGTERM once ``ready()`` holds (polled), then wait; returns (stdout, stderr)."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"exited {proc.returncode} before the signal:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail("no progress marker before the timeout")
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _long_clip(path: Path, frames: int, hw: tuple[int, int]) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (hw[1], hw[0]))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (hw[0], hw[1] * 2, 3), dtype=np.uint8)
    for i in range(frames):
        writer.write(np.ascontiguousarray(base[:, i % hw[1]:i % hw[1] + hw[1]]))
    writer.release()
    return path


def test_sigterm_in_infer_is_ctrl_c_playable_video_json_no_partial(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    import cv2

    from tests.helpers.models import INPUT_SIZE as TINY_HW  # the `tiny` fixture's frame size

    ckpt, _ = tiny
    n = 600
    clip = _long_clip(tmp_path / "long.mp4", n, TINY_HW)
    out, report, masks = tmp_path / "out" / "out.mp4", tmp_path / "run.json", tmp_path / "masks"
    proc = _toolkit("infer", "-m", str(ckpt), "-s", str(clip), "-o", str(out), "--json", str(report),
                    "--masks", str(masks), "--no-progress", "--workers", "1", "--threads", "1")
    stdout, stderr = _term_when(proc, lambda: masks.is_dir() and len(list(masks.glob("*.png"))) >= 3)
    assert proc.returncode == INTERRUPTED, stderr
    assert "Traceback" not in stderr and "stopped by interrupted (SIGTERM)" in stdout and f"wrote {out}" in stdout
    s = json.loads(report.read_text())
    assert s["exit_code"] == INTERRUPTED and s["stopped_by"] == "interrupted (SIGTERM)"
    assert 3 <= s["frames"] < n
    cap = cv2.VideoCapture(str(out))
    # the signal may land between two sinks' writes of one frame: that frame is in one of them, uncounted
    done = {s["frames"], s["frames"] + 1}
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) in done
    ok, frame = cap.read()
    assert ok and frame.shape[:2] == TINY_HW
    assert len(list(masks.glob("*.png"))) in done
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == [], leftovers  # no .out.partial.mp4, no temp file of an atomic write


def test_sigterm_in_train_keeps_a_resumable_state(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", "synthetic", "--width", "4", "--crop", "32x32", "--size", "32x48", "--batch-size", "2",
            "--epochs", "50", "--threads", "1", "--no-progress", "--output", str(out)]
    log = out / "train_log.csv"
    proc = _toolkit(*args)
    _, stderr = _term_when(proc, log.is_file)
    assert proc.returncode == INTERRUPTED, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines[-1] == "interrupted (SIGTERM)" and "Traceback" not in stderr, stderr
    with log.open() as f:
        done = len(list(csv.DictReader(f)))
    assert 1 <= done < 50
    assert {"train_state.safetensors", "last.safetensors", "best.safetensors"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp file of an atomic write
    resumed = _toolkit(*args, "--resume", "--stop-after", str(done + 1))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"at epoch {done}" in stderr and json.loads(stdout.splitlines()[-1])["epochs_done"] == done + 1


def test_sigterm_raises_keyboard_interrupt_inside_a_command_and_is_put_back() -> None:
    """In process: a command wrapped by handle_errors gets SIGTERM as KeyboardInterrupt (exit 130, one line),
    and the handler that was there before is there again afterwards."""
    app = typer.Typer()
    seen: list[str] = []

    @app.command()
    @handle_errors
    def work() -> None:
        seen.append("started")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises on the next bytecode
        seen.append("not interrupted")

    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == INTERRUPTED and seen == ["started"]
    assert result.output.strip() == "interrupted (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_handler_set_inside_wins_while_set() -> None:
    """serve installs its own SIGTERM handler (drain, exit 0): inside the block it gets the signal, not the
    interruption, and the block's own handler is back once serve puts its previous one back."""
    from toolkit.cli.common import sigterm_as_interrupt

    got: list[int] = []
    with sigterm_as_interrupt():
        ours = signal.getsignal(signal.SIGTERM)
        previous = signal.signal(signal.SIGTERM, lambda signum, _frame: got.append(signum))
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        signal.signal(signal.SIGTERM, previous)
        assert signal.getsignal(signal.SIGTERM) is ours
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert got == [signal.SIGTERM]


def test_sigterm_during_int8_calibration_leaves_nothing(synthetic_dir: Path, tmp_path: Path,
                                                         tmp_path_factory: pytest.TempPathFactory,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """In process, the signal sent at the second calibration image: exit 130, no output, no cache entry and no
    temp folder (the default action used to leave /tmp/toolkit-quant-* behind)."""
    import tempfile

    import tqdm

    from tests.helpers.models import tiny_onnx
    from toolkit.cli.app import app

    model = tiny_onnx(tmp_path_factory, "mask")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    real_update = tqdm.tqdm.update
    images: list[int] = []

    def update(self: tqdm.tqdm, n: float | None = 1) -> bool | None:
        if self.desc == "calibrate":
            images.append(1)
            if len(images) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
        return real_update(self, n)

    monkeypatch.setattr(tqdm.tqdm, "update", update)
    out, cache = tmp_path / "int8.onnx", tmp_path / "cache"
    result = CliRunner().invoke(app, ["quantize", str(model), "--precision", "int8", "--calib-data", str(synthetic_dir),
                                      "--calib-size", "6", "--cache-dir", str(cache), "-o", str(out)])
    assert result.exit_code == INTERRUPTED, result.output
    assert result.output.strip().splitlines()[-1] == "interrupted (SIGTERM)" and len(images) == 2
    assert not out.exists() and list(scratch.iterdir()) == []
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []


def test_every_command_takes_sigterm_as_ctrl_c() -> None:
    """The handler is installed by handle_errors: every command of the app must be wrapped by it (demo, serve
    and export-triton included), or SIGTERM would kill that command with 143 and half-written outputs."""
    from toolkit.cli.app import app

    wrapper_code = handle_errors(lambda: None).__code__
    commands = [c for c in app.registered_commands if c.callback is not None]
    assert len(commands) == len(app.registered_commands) >= 14
    assert [c.name or c.callback.__name__ for c in commands if c.callback.__code__ is not wrapper_code] == []
