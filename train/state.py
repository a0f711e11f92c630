"""Resumable training state in one safetensors file, no pickle: model + optimizer tensors, JSON scalars.

``train_state.safetensors`` holds everything ``--resume`` needs (model weights under ``model.``,
optimizer tensors under ``optim.<param>.<name>``, the torch RNG state, and a JSON header with the
epoch, optimizer scalars/param groups, best score, config and the log rows so far). It is written
atomically before ``last.safetensors``, so the pair can never disagree in a way that matters:
resume reads only this file. Data order and augmentation are functions of (seed, epoch, index), so
no numpy/python RNG state needs saving.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toolkit.errors import CheckpointError
from toolkit.files import atomic_write

STATE_KEY = "train_state"
STATE_VERSION = 1


def _split_optimizer_state(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt_state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"scalars": scalars, "param_groups": opt_state["param_groups"]}


def save_train_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     info: dict[str, Any], extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write model, optimizer, torch RNG, ``extra`` tensors (the EMA weights) and ``info`` (JSON-able: epoch,
    best, log...) atomically."""
    from safetensors.torch import save

    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    opt_tensors, opt_json = _split_optimizer_state(optimizer.state_dict())
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors.update({f"extra.{k}": v.detach().to("cpu").contiguous() for k, v in (extra or {}).items()})
    header = {"version": STATE_VERSION, "optimizer": opt_json, "info": info, "sha256": tensors_sha256(tensors)}
    data = save(tensors, metadata={STATE_KEY: json.dumps(header)})  # bytes: a full disk is then an OSError
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes: safetensors checks the file's layout but not
    its contents, so a state overwritten in place (a bad disk, a stray write) would resume silently."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _read_header(path: Path, tensors: bool) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON header (and, if asked, the tensors) of a training state, one clear error per failure."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(STATE_KEY)
        loaded = load_file(str(path)) if tensors and raw is not None else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable training state ({e})") from None
    if raw is None:
        raise CheckpointError(f"{path}: not a training state written by toolkit train")
    return json.loads(raw), loaded


def read_train_state_info(path: str | Path) -> dict[str, Any]:
    """The saved ``info`` (epoch, config, log...) without loading any tensor."""
    return _read_header(Path(path), tensors=False)[0]["info"]


def load_train_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                     extra: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Restore model, optimizer and torch RNG from ``path`` in place (and fill ``extra`` with the saved extra
    tensors); returns the saved ``info``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no training state to resume from (run without --resume first)")
    header, tensors = _read_header(path, tensors=True)
    expected = header.get("sha256")  # states written before the checksum existed have none
    if expected is not None and tensors_sha256(tensors) != expected:
        raise CheckpointError(f"{path}: checksum mismatch: its tensors changed after it was written (corrupt "
                              "file?); resume from a good copy or train again with --overwrite")
    model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_sd)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: saved model does not match this run's architecture/width: "
                              f"{str(e).splitlines()[0]}") from None
    opt_json = header["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, entries in opt_json["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": opt_json["param_groups"]})
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    if extra is not None:
        extra.update({k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")})
    return header["info"]
