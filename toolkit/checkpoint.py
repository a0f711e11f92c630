"""Model checkpoints: safetensors weights + JSON metadata in the same file's header. No pickle.

The metadata (architecture, width, label space, normalisation, input size, provenance) is everything
later steps need, so export, eval and infer take a checkpoint and no other flags. Writes are atomic
(``toolkit.files.atomic_write``: temp file in the same folder, fsync, rename): a killed process never
leaves a corrupt checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from toolkit.data.info import DatasetInfo
from toolkit.errors import CheckpointError, ToolkitError
from toolkit.files import atomic_write

METADATA_KEY = "toolkit"
FORMAT_VERSION = 1


@dataclass
class ModelMeta:
    """What a checkpoint says about its model."""

    arch: str
    width: int
    dataset: DatasetInfo
    input_size: tuple[int, int] = (360, 480)
    provenance: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def to_json(self) -> str:
        d = asdict(self)
        d["dataset"] = self.dataset.to_dict()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        d = json.loads(text)
        return cls(arch=str(d["arch"]), width=int(d["width"]), dataset=DatasetInfo.from_dict(d["dataset"]),
                   input_size=tuple(int(v) for v in d.get("input_size", (360, 480))),  # type: ignore[arg-type]
                   provenance=dict(d.get("provenance", {})),
                   format_version=int(d.get("format_version", FORMAT_VERSION)))


def write_json(path: str | Path, obj: object) -> Path:
    """Write ``obj`` as indented JSON (newline-terminated) atomically: reports are never half-written."""
    text = json.dumps(obj, indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def save_checkpoint(path: str | Path, model: nn.Module, meta: ModelMeta) -> Path:
    """Write the model's state dict (contiguous CPU tensors) and ``meta`` atomically."""
    from safetensors.torch import save

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
    return create_model(meta.arch, num_classes=meta.num_classes, width=meta.width, **kwargs)


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


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed (for provenance in ONNX metadata and engine sidecars)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
