"""Fixtures shared by the CLI tests: a tiny checkpoint and a short clip, made by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.models import INPUT_SIZE as TINY_HW  # the CLI tests' frame size


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, clip): a width-4 SegNet on 3 synthetic classes and a 5-frame panning clip, 64x96."""
    from toolkit.checkpoint import save_checkpoint
    from toolkit.core.meta import ModelMeta
    from toolkit.data import synthetic_info
    from toolkit.models import create_model
    from toolkit.video.sample import make_sample_clip

    root = tmp_path_factory.mktemp("cli_tiny")
    torch.manual_seed(0)
    ckpt = save_checkpoint(root / "tiny.safetensors", create_model("segnet", num_classes=3, width=4),
                           ModelMeta("segnet", 4, synthetic_info(3), input_size=TINY_HW))
    clip = make_sample_clip(root / "clip.mp4", frames=5, size=TINY_HW, use_camvid=False)
    return ckpt, clip.path
