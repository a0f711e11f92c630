"""Fixtures for the video tests: a tiny clip and a tiny checkpoint, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.video import HW, NUM_CLASSES, write_clip
from toolkit.checkpoint import save_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.data import synthetic_info
from toolkit.models import create_model


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 6)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = create_model("segnet", num_classes=NUM_CLASSES, width=4)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(path, model, ModelMeta("segnet", 4, synthetic_info(NUM_CLASSES), input_size=HW))
