"""Max-unpooling in three interchangeable, bit-identical forms.

TensorRT has neither MaxUnpool nor MaxPool's Indices output, so the SegNet decoder's unpooling must
exist in forms it can run. All three compute the same function of (x, y), where x is the pre-pool
encoder feature and y the decoder feature at half resolution: each value of y goes to the position of
the *first* maximum (row-major, PyTorch's own tie rule) of its 2x2 window in x, zeros elsewhere.

- ``maxunpool``: max_pool2d(return_indices) + max_unpool2d (ONNX: MaxPool with Indices + scatter).
- ``mask``: no indices; the first-argmax mask is rebuilt from x with slicing, Max, Equal, And/Not,
  Where and pixel_shuffle. Its ONNX form (``toolkit/export/lowering.py``) computes the same values
  with ops every TensorRT version parses and ONNX Runtime runs fast.
- ``plugin``: the ``mask`` function as one custom op (``segnet::mask_unpool``), exported as a single
  ONNX node that TensorRT maps to our ``SegNetMaskUnpool`` plugin (engines/unpool).

Zeros are written with ``where`` rather than a multiply, so the output holds +0.0 exactly where
max_unpool2d does (a multiply would give -0.0 for negative y and NaN for infinite y).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.errors import UnknownNameError, suggest

if TYPE_CHECKING:
    from torch.autograd.function import BackwardCFunction, FunctionCtx

UnpoolMode = Literal["maxunpool", "mask", "plugin"]
UNPOOL_MODES: tuple[str, ...] = ("maxunpool", "mask", "plugin")



def check_unpool_mode(mode: str) -> str:
    """Return ``mode`` if it is a valid unpooling form, else raise with the choices."""
    if mode not in UNPOOL_MODES:
        raise UnknownNameError(f"unknown unpool mode '{mode}': {suggest(mode, UNPOOL_MODES)}")
    return mode


def _window_views(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four members of every 2x2 window, in row-major order, each at half resolution."""
    return x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]


def first_argmax_masks(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Boolean masks (half resolution) marking, per 2x2 window, the first maximum of ``x``.

    Exactly one of the four masks is true per window. A window holding NaN marks the last member,
    as the TensorRT kernel does (PyTorch's indices differ there; NaN never survives a ReLU).
    """
    a, b, c, d = _window_views(x)
    m = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
    ma = a == m
    mb = (b == m) & ~ma
    taken = ma | mb
    mc = (c == m) & ~taken
    md = ~(taken | mc)
    return ma, mb, mc, md


def mask_unpool(x: Tensor, y: Tensor) -> Tensor:
    """Unpool ``y`` (N,C,H/2,W/2) to the first-argmax positions of ``x`` (N,C,H,W), indices-free."""
    zero = torch.zeros((), dtype=y.dtype, device=y.device)
    parts = [torch.where(m, y, zero) for m in first_argmax_masks(x)]
    # stack on dim 2 -> channel c*4+k, which is pixel_shuffle's (ONNX DepthToSpace CRD) layout.
    return F.pixel_shuffle(torch.stack(parts, dim=2).flatten(1, 2), 2)


def _mask_unpool_backward_y(x: Tensor, grad: Tensor) -> Tensor:
    """Gradient of mask_unpool w.r.t. y: the output gradient gathered at the first-argmax positions."""
    g = F.pixel_unshuffle(grad, 2)
    g = g.unflatten(1, (grad.shape[1], 4))
    masks = torch.stack(first_argmax_masks(x), dim=2)
    return torch.where(masks, g, torch.zeros((), dtype=g.dtype, device=g.device)).sum(dim=2)


@torch.library.custom_op("segnet::mask_unpool", mutates_args=())
def plugin_unpool(x: Tensor, y: Tensor) -> Tensor:
    """The ``plugin`` form: one opaque op that the ONNX exporter writes as a SegNetMaskUnpool node."""
    return mask_unpool(x, y)


@plugin_unpool.register_fake
def _(x: Tensor, y: Tensor) -> Tensor:
    return x.new_empty(x.shape, dtype=y.dtype)


def _plugin_setup_context(ctx: FunctionCtx, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
    ctx.save_for_backward(inputs[0])


def _plugin_backward(ctx: BackwardCFunction, grad: Tensor) -> tuple[None, Tensor]:
    (x,) = ctx.saved_tensors
    return None, _mask_unpool_backward_y(x, grad)


plugin_unpool.register_autograd(_plugin_backward, setup_context=_plugin_setup_context)


class MaxPool2x2(nn.Module):
    """2x2/2 max-pool; returns (pooled, indices) where indices are None in indices-free modes."""

    def __init__(self, mode: UnpoolMode = "maxunpool") -> None:
        super().__init__()
        self.mode: str = check_unpool_mode(mode)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.mode == "maxunpool":
            return F.max_pool2d(x, 2, 2, return_indices=True)
        return F.max_pool2d(x, 2, 2), None


class Unpool2x2(nn.Module):
    """Inverse of MaxPool2x2: places y at the pooled maxima of the pre-pool feature x."""

    def __init__(self, mode: UnpoolMode = "maxunpool") -> None:
        super().__init__()
        self.mode: str = check_unpool_mode(mode)

    def forward(self, y: Tensor, x: Tensor, indices: Tensor | None) -> Tensor:
        if self.mode == "maxunpool":
            if indices is None:
                raise RuntimeError("maxunpool form needs the pooling indices (encoder in another mode?)")
            return F.max_unpool2d(y, indices, 2, 2, output_size=x.shape[-2:])
        if self.mode == "mask":
            return mask_unpool(x, y)
        return plugin_unpool(x, y)


def set_unpool_mode(model: nn.Module, mode: str) -> nn.Module:
    """Switch every pool/unpool layer of ``model`` to one form; the weights are untouched."""
    check_unpool_mode(mode)
    for m in model.modules():
        if isinstance(m, MaxPool2x2 | Unpool2x2):
            m.mode = mode
    return model
