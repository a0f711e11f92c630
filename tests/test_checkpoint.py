"""Checkpoints round-trip and every broken file gives one clear CheckpointError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from toolkit.checkpoint import METADATA_KEY, load_checkpoint, save_checkpoint
from toolkit.core.meta import ModelMeta
from toolkit.data import synthetic_info
from toolkit.errors import CheckpointError
from toolkit.models import create_model


def make(tmp_path: Path, arch: str = "enhanced", width: int = 8) -> tuple[Path, torch.nn.Module, ModelMeta]:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=6, width=width).eval()
    meta = ModelMeta(arch=arch, width=width, dataset=synthetic_info(), input_size=(64, 96),
                     provenance={"command": "test"})
    return save_checkpoint(tmp_path / "m.safetensors", model, meta), model, meta


def test_round_trip(tmp_path: Path) -> None:
    path, model, meta = make(tmp_path)
    loaded, meta2 = load_checkpoint(path)
    assert meta2 == meta and not loaded.training
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not list(tmp_path.glob("*.tmp")), "atomic write left a temp file"


def test_missing_and_truncated(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.safetensors")
    path, _, _ = make(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_shape_mismatch_and_unknown_arch(tmp_path: Path) -> None:
    _path, model, meta = make(tmp_path)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    bad = json.loads(meta.to_json())
    bad["width"] = 16
    save_file(tensors, str(tmp_path / "w.safetensors"), metadata={METADATA_KEY: json.dumps(bad)})
    with pytest.raises(CheckpointError, match="has shape .* expects"):
        load_checkpoint(tmp_path / "w.safetensors")
    bad["arch"], bad["width"] = "unet", 8
    save_file(tensors, str(tmp_path / "a.safetensors"), metadata={METADATA_KEY: json.dumps(bad)})
    with pytest.raises(CheckpointError, match="architecture 'unet' is unknown"):
        load_checkpoint(tmp_path / "a.safetensors")
    save_file(tensors, str(tmp_path / "n.safetensors"))
    with pytest.raises(CheckpointError, match="no 'toolkit' metadata"):
        load_checkpoint(tmp_path / "n.safetensors")


def test_wrong_architecture_weights(tmp_path: Path) -> None:
    path, _, meta = make(tmp_path, arch="segnet")
    text = json.loads(meta.to_json())
    text["arch"] = "enhanced"
    tensors = {k: v.contiguous() for k, v in load_checkpoint(path)[0].state_dict().items()}
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={METADATA_KEY: json.dumps(text)})
    with pytest.raises(CheckpointError, match="has shape|do not fit"):
        load_checkpoint(tmp_path / "x.safetensors")


def test_output_stride_recorded_and_old_files_read_as_8(tmp_path: Path) -> None:
    """The model's stride goes into the header; a header written before the key existed reads as 8."""
    path, _, meta = make(tmp_path, arch="enhanced_s2")
    assert meta.output_stride == 8  # what the caller passed: save_checkpoint writes the model's own
    assert load_checkpoint(path)[1].output_stride == 16
    (tmp_path / "old").mkdir()
    plain, _, _ = make(tmp_path / "old", arch="enhanced")
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(plain), framework="pt") as f:
        header = json.loads(f.metadata()[METADATA_KEY])
    del header["output_stride"]
    old = tmp_path / "old.safetensors"
    save_file(load_file(str(plain)), str(old), metadata={METADATA_KEY: json.dumps(header)})
    model, old_meta = load_checkpoint(old)
    assert old_meta.output_stride == 8 and model.output_stride == 8


def test_a_stride_that_contradicts_the_architecture_is_refused(tmp_path: Path) -> None:
    path, _, _ = make(tmp_path, arch="enhanced_s2")
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()[METADATA_KEY])
    header["output_stride"] = 8
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(path)), str(bad), metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(CheckpointError, match="output stride 8, but 'enhanced_s2' has 16"):
        load_checkpoint(bad)
