"""`toolkit serve` from the command line: one-line errors, and SIGTERM stopping a real server cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.ports import free_ports
from tests.helpers.serve import needs_serve
from toolkit.cli.app import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_serve_without_pytriton_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pytriton" or m.startswith("pytriton.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pytriton", None)  # makes `import pytriton` raise ImportError
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "toolkit serve needs PyTriton" in lines[0] and "[serve]" in lines[0]


@needs_serve
def test_serve_port_in_use_is_one_line(tiny_checkpoint: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        grpc, metrics = free_ports(2)
        result = runner.invoke(app, ["serve", "--model", str(tiny_checkpoint), "--http-port", str(busy),
                                     "--grpc-port", str(grpc), "--metrics-port", str(metrics)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and f"http port {busy} on 127.0.0.1 is not free" in result.output


@needs_serve
def test_serve_stops_cleanly_on_sigterm(tiny_checkpoint: Path) -> None:
    from toolkit.backend.triton import client as tc

    http, grpc, metrics = free_ports(3)
    cmd = [sys.executable, "-c", "from toolkit.cli.app import main; main()", "serve", "--model", str(tiny_checkpoint),
           "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--drain-timeout", "10"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        err_lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            err_lines.append(line)
            if line.startswith("ready:"):
                break
        assert err_lines and err_lines[-1].startswith("ready:"), "".join(err_lines)
        u = tc.parse_triton_url(f"triton://127.0.0.1:{http}/segnet")
        c = tc.connect(u)
        out = tc.infer(c, u, {"image": np.zeros((1, 64, 96, 3), np.uint8)}, ["classes"])
        c.close()
        assert out["classes"].shape == (1, 64, 96)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.rstrip().endswith("stopped") and "Traceback" not in err
