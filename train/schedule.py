"""SGD with the paper's defaults and a per-iteration learning rate: linear warm-up, then poly decay.

The rate is a pure function of the global step, so resuming needs only the epoch, not scheduler state.
"""

from __future__ import annotations

import torch
from torch import nn


def lr_at(step: int, total_steps: int, base_lr: float, warmup_steps: int = 0, power: float = 0.9,
          warmup_start: float = 0.1) -> float:
    """Learning rate at a 0-based iteration: warm-up from ``warmup_start * base_lr``, then poly to 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (warmup_start + (1 - warmup_start) * step / warmup_steps)
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return base_lr * (1 - progress) ** power


def make_sgd(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4) -> torch.optim.SGD:
    """SGD; no weight decay on BatchNorm parameters and biases (1-D tensors)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.dim() <= 1 else decay).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}], lr=lr, momentum=momentum)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
