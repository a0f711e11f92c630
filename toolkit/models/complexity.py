"""Parameter and FLOP counts, for ``toolkit info --model``.

FLOPs are counted from the convolutions (2 x multiply-accumulates), which carry all but a fraction of
a percent of the work; BN, ReLU, pooling and unpooling are listed as elementwise and left out.
"""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_conv_macs(model: nn.Module, input_shape: tuple[int, int, int, int]) -> int:
    """Multiply-accumulates of every Conv2d for one forward pass at ``input_shape``."""
    macs = 0

    def hook(m: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        kh, kw = m.kernel_size
        macs += out.numel() * (m.in_channels // m.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in handles:
            h.remove()
    return macs


def conv_macs_at(model: nn.Module, h: int, w: int) -> int:
    """``count_conv_macs`` at an HxW frame (padded to multiples of its output stride as the model sees it), counted on a
    16x16 frame and scaled: every feature map of this network is (H/s) x (W/s), so convolution MACs grow
    exactly with H x W, and a 96-GFLOP forward at 360x480 is not needed to count them."""
    from toolkit.core.shapes import pad_to_multiple

    ph, pw = pad_to_multiple(h, w, int(getattr(model, "output_stride", 8)))
    return count_conv_macs(model, (1, 3, 16, 16)) * ph * pw // 256
