"""Tiny exported models shared by the export, quant, ORT-backend, compare and CLI tests.

Each (lowering) is exported once per test session into pytest's session temp folder, whichever test
asks first; a width-4 SegNet with randomised BatchNorm statistics, so the graphs are not trivial.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toolkit.checkpoint import save_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.data import synthetic_info
from toolkit.models import create_model

WIDTH = 4
INPUT_SIZE = (64, 96)


def tiny_model(seed: int = 0, arch: str = "enhanced") -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=synthetic_info().num_classes, width=WIDTH)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _tag(arch: str) -> str:
    return "" if arch == "enhanced" else f"_{arch}"


def tiny_checkpoint(factory: pytest.TempPathFactory, arch: str = "enhanced") -> Path:
    path = factory.getbasetemp() / "onnx_models" / f"tiny{_tag(arch)}.safetensors"
    if not path.is_file():
        save_checkpoint(path, tiny_model(arch=arch), ModelMeta(arch, WIDTH, synthetic_info(), input_size=INPUT_SIZE))
    return path


def tiny_onnx(factory: pytest.TempPathFactory, unpool: str, arch: str = "enhanced") -> Path:
    """The tiny checkpoint exported in one lowering (dynamic batch and H/W)."""
    from toolkit.core.onnx_file import save_onnx
    from toolkit.export import export_checkpoint

    path = factory.getbasetemp() / "onnx_models" / f"tiny{_tag(arch)}_{unpool}.onnx"
    if not path.is_file():
        save_onnx(export_checkpoint(tiny_checkpoint(factory, arch), unpool=unpool), path)
    return path


def bn_folded(model: torch.nn.Module) -> torch.nn.Module:
    """A copy with every BatchNorm folded into its conv, as the ONNX exporter (and TensorRT) do.

    Folding changes float rounding by ~1e-7; where a 2x2 pooling window holds values that are equal
    in exact arithmetic (flat image regions), that is enough to move the unpooling's argmax, so on
    real frames the exported graph is compared with this copy at 1e-4 (and with the unfolded model
    by argmax agreement)."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for mod in folded.modules():
        if isinstance(mod, torch.nn.Sequential) and len(mod) == 3 and isinstance(mod[1], torch.nn.BatchNorm2d):
            mod[0], mod[1] = fuse_conv_bn_eval(mod[0], mod[1]), torch.nn.Identity()
    return folded
