"""Model checkpoints: safetensors weights + JSON metadata in the same file's header. No pickle.

The metadata (architecture, width, label space, normalisation, input size, provenance) is everything
later steps need, so export, eval and infer take a checkpoint and no other flags. Writes are atomic
(``toolkit.files.atomic_write``: temp file in the same folder, fsync, rename): a killed process never
leaves a corrupt checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from toolkit.core.meta import ModelMeta
from toolkit.errors import CheckpointError, ToolkitError
from toolkit.files import atomic_write

__all__ = ["METADATA_KEY", "build_model", "load_checkpoint", "read_checkpoint", "save_checkpoint"]

METADATA_KEY = "toolkit"


def save_checkpoint(path: str | Path, model: nn.Module, meta: ModelMeta) -> Path:
    """Write the model's state dict (contiguous CPU tensors) and ``meta`` atomically; the model's own
    ``output_stride`` (8 for a module without one) is what the file records."""
    import dataclasses

    from safetensors.torch import save

    meta = dataclasses.replace(meta, output_stride=int(getattr(model, "output_stride", meta.output_stride)))

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    data = save(tensors, metadata={METADATA_KEY: meta.to_json()})  # bytes: a full disk is then an OSError
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelMeta]:
    """Read tensors and metadata, with one clear error for each way a file can be wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw_meta = (f.metadata() or {}).get(METADATA_KEY)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors checkpoint (truncated or corrupt?): "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if raw_meta is None:
        raise CheckpointError(f"{path}: safetensors file has no '{METADATA_KEY}' metadata; "
                              "was it written by this toolkit?")
    try:
        meta = ModelMeta.from_json(raw_meta)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, ToolkitError) as e:
        raise CheckpointError(f"{path}: invalid checkpoint metadata ({e})") from None
    return tensors, meta


def build_model(meta: ModelMeta, **kwargs: object) -> nn.Module:
    """Instantiate the architecture a checkpoint describes (unknown names are a CheckpointError)."""
    from toolkit.models import create_model, list_models

    if meta.arch not in list_models():
        raise CheckpointError(f"checkpoint architecture '{meta.arch}' is unknown; known: "
                              f"{', '.join(list_models())}")
    model = create_model(meta.arch, num_classes=meta.num_classes, width=meta.width, **kwargs)
    if int(getattr(model, "output_stride", meta.output_stride)) != meta.output_stride:
        raise CheckpointError(f"checkpoint says output stride {meta.output_stride}, but '{meta.arch}' has "
                              f"{model.output_stride}; the file's metadata is wrong: re-save it")
    return model


def load_checkpoint(path: str | Path, **model_kwargs: object) -> tuple[nn.Module, ModelMeta]:
    """Build the model and load its weights, in eval mode; shape mismatches are one clear line."""
    tensors, meta = read_checkpoint(path)
    model = build_model(meta, **model_kwargs)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit '{meta.arch}' (width {meta.width}): "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for k, v in expected.items():
        if v.shape != tensors[k].shape:
            raise CheckpointError(f"{path}: tensor '{k}' has shape {tuple(tensors[k].shape)}, "
                                  f"'{meta.arch}' width {meta.width} expects {tuple(v.shape)}")
    model.load_state_dict(tensors)
    return model.eval(), meta
