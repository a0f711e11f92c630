"""--device cuda / gpu on a PyTorch without CUDA: one line naming the problem and the fix, exit 2, in every
command that runs a PyTorch model (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from toolkit.backend.torch.device import torch_device
from toolkit.checkpoint import save_checkpoint
from toolkit.cli.app import app
from toolkit.core.meta import ModelMeta
from toolkit.data import synthetic_info
from toolkit.errors import DeviceError
from toolkit.models import create_model

runner = CliRunner()


@pytest.fixture
def cpu_only_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """This PyTorch as the README installs it (CPU wheel), whatever machine the tests run on."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)


def test_device_names(cpu_only_torch: None) -> None:
    assert torch_device("cpu") == torch.device("cpu") and torch_device(torch.device("cpu")).type == "cpu"
    with pytest.raises(DeviceError, match=r"this PyTorch build \(.*\) has no CUDA; install a CUDA build"):
        torch_device("cuda:0")
    with pytest.raises(DeviceError, match="PyTorch calls GPUs 'cuda', and this PyTorch build .* has no CUDA"):
        torch_device("gpu")
    with pytest.raises(DeviceError, match="Did you mean 'cuda'"):
        torch_device("cdua")
    with pytest.raises(DeviceError, match="expected cpu, cuda or cuda:N"):
        torch_device("cpu:1")


@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_every_torch_command_says_no_cuda_in_one_line(cpu_only_torch: None, tmp_path: Path, device: str) -> None:
    ckpt = save_checkpoint(tmp_path / "tiny.safetensors", create_model("segnet", num_classes=6, width=4),
                           ModelMeta("segnet", 4, synthetic_info(6), input_size=(32, 48)))
    (tmp_path / "img.png").write_bytes(b"")
    commands = [
        ["eval", str(ckpt), "--data", "synthetic", "--limit", "1"],
        ["infer", "-m", str(ckpt), "-s", str(tmp_path / "img.png"), "--no-progress"],
        ["bench", "-m", str(ckpt), "--shape", "1x3x32x48", "-n", "1"],
        ["train", "--data", "synthetic", "--out", str(tmp_path / "run"), "--width", "4", "--epochs", "1"],
    ]
    for args in commands:
        result = runner.invoke(app, [*args, "--device", device])
        assert result.exit_code == 2, (args[0], result.output)
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("error: --device") and "no CUDA" in lines[-1], (args[0], result.output)
        assert "Traceback" not in result.output
