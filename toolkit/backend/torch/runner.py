"""PyTorch eager runner: the fp32 reference every other backend is compared against."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from toolkit.backend.base import OUTPUT_NAME, BaseLoader, BaseRunner, resolve
from toolkit.backend.torch.device import torch_device
from toolkit.core.meta import ModelMeta


class TorchRunner(BaseRunner):
    """Runs an nn.Module (or a loader giving (module, meta)) under no_grad on one device."""

    backend = "torch"
    thread_safe = True

    def __init__(self, model: nn.Module | BaseLoader, meta: ModelMeta | None = None, device: str = "cpu",
                 name: str | None = None, source: str = "") -> None:
        super().__init__(name, source)
        self._source, self.meta, self.device = model, meta, torch_device(device)
        self.model: nn.Module | None = None

    def _activate_impl(self) -> None:
        loaded = resolve(self._source)
        if isinstance(loaded, tuple):
            loaded, self.meta = loaded
        self.model = loaded.to(self.device).eval()

    def _deactivate_impl(self) -> None:
        self.model = None

    @property
    def on_cpu(self) -> bool:
        return self.device.type == "cpu"

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.model is not None
        (x,) = feed.values()
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return {OUTPUT_NAME: out.float().cpu().numpy()}
