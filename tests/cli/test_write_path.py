"""The write path through the CLI: an output that is an input is refused, write failures are one line with
exit code 3 and no temp file, outputs get the umask's mode (issue 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from toolkit.checkpoint import ModelMeta, save_checkpoint
from toolkit.cli.app import app
from toolkit.data import synthetic_info
from toolkit.models import create_model
from toolkit.video.sample import make_sample_clip

runner = CliRunner()
HW = (64, 96)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, clip): a width-4 SegNet on 3 synthetic classes and a 5-frame clip, 64x96."""
    root = tmp_path_factory.mktemp("write_path")
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "tiny.safetensors", create_model("segnet", num_classes=3, width=4),
                           ModelMeta("segnet", 4, synthetic_info(3), input_size=HW))
    clip = make_sample_clip(root / "clip.mp4", frames=5, size=HW, use_camvid=False)
    return ckpt, clip.path


def _refused(args: list[str], *messages: str, code: int = 2) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for m in messages:
        assert m in result.output, result.output
    return result.output


def test_output_that_resolves_to_an_input_is_refused(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, clip = tiny
    before = clip.read_bytes()
    _refused(["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(clip), "--no-progress"],
             f"--output {clip} is the input {clip}; writing it would destroy")
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    _refused(["infer", "-m", str(ckpt), "-s", str(clip), "-o", str(link), "--no-progress"], "(through a link)")
    _refused(["infer", "-m", str(ckpt), "-s", str(clip), "--json", str(ckpt), "--no-progress"], "--json")
    assert clip.read_bytes() == before

    fp32 = tmp_path / "m.onnx"
    fp32.write_bytes(b"an fp32 model")
    os.link(fp32, tmp_path / "hard.onnx")
    _refused(["quantize", str(fp32), "--precision", "fp16", "-o", str(fp32)], "is the input")
    _refused(["quantize", str(fp32), "--precision", "fp16", "-o", str(tmp_path / "hard.onnx")], "(through a link)")
    assert fp32.read_bytes() == b"an fp32 model"

    os.link(ckpt, tmp_path / "ckpt_link.onnx")
    _refused(["export", str(ckpt), "-o", str(tmp_path / "ckpt_link.onnx"), "--no-verify"], "is the input")
    _refused(["bench", "-m", str(ckpt), "--json", str(ckpt), "-n", "1"], "--json", "is the input")
    _refused(["eval", str(ckpt), "--data", "synthetic", "--json", str(ckpt)], "--json", "is the input")
    _refused(["build-engine", str(fp32), "-o", str(tmp_path / "hard.onnx"), "--dry-run"], "is the input")
    assert ckpt.stat().st_size > 1000
