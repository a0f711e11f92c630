"""An exponential moving average of the weights (``--ema 0.999``): a second model, updated after every step,
validated each epoch beside the trained one and saved as its own checkpoint (``ema.safetensors``).

Averaging the last few hundred steps' weights smooths SGD's noise at the end of a long schedule; BatchNorm's
running statistics are copied from the trained model (they are averages already). Its tensors travel in
``train_state.safetensors``, so ``--resume`` continues the average exactly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from toolkit.errors import ToolkitError


class WeightEMA:
    """ema = decay * ema + (1 - decay) * weights, after each optimizer step."""

    def __init__(self, model: nn.Module, decay: float, state: dict[str, torch.Tensor] | None = None) -> None:
        if not 0 < decay < 1:
            raise ToolkitError(f"--ema {decay}: expected a decay in (0, 1), e.g. 0.999")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        if state:
            self.model.load_state_dict(state)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_params = [p for p in self.model.parameters()]
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - self.decay)
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.model.state_dict().items()}
