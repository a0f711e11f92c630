"""Loaders for PyTorch models: from a checkpoint file, or the embedded default."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from toolkit.checkpoint import load_checkpoint
from toolkit.core.loader import BaseLoader
from toolkit.core.meta import ModelMeta


class LoadCheckpoint(BaseLoader[tuple[nn.Module, ModelMeta]]):
    """(model in eval mode, its metadata) from a safetensors checkpoint; None = embedded default."""

    def __init__(self, path: str | Path | None = None, unpool: str = "maxunpool") -> None:
        self.path, self.unpool = path, unpool

    def _call_impl(self) -> tuple[nn.Module, ModelMeta]:
        from toolkit.assets import default_checkpoint_path

        return load_checkpoint(self.path or default_checkpoint_path(), unpool=self.unpool)


def load_checkpoint_model(path: str | Path | None = None, unpool: str = "maxunpool") -> tuple[nn.Module, ModelMeta]:
    """Function twin of LoadCheckpoint."""
    return LoadCheckpoint(path, unpool)()
