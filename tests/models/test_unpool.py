"""The three unpooling forms compute one function, bit for bit, forward and backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from toolkit.core.names import PLUGIN_OP_TYPE, PLUGIN_VERSION
from toolkit.errors import UnknownNameError
from toolkit.models.unpool import (
    MaxPool2x2,
    Unpool2x2,
    check_unpool_mode,
    first_argmax_masks,
    mask_unpool,
    plugin_unpool,
    set_unpool_mode,
)


def reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    _, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    return F.max_unpool2d(y, idx, 2, 2, output_size=x.shape[-2:])


def bits(t: torch.Tensor) -> torch.Tensor:
    """Raw bit patterns, so +0.0 and -0.0 differ (torch.equal treats them as equal)."""
    return t.contiguous().view(torch.int32 if t.dtype == torch.float32 else torch.int16)


def tie_heavy(shape: tuple[int, ...], gen: torch.Generator, levels: int = 3) -> torch.Tensor:
    x = torch.randint(0, levels, shape, generator=gen).float()
    x[:, :, :4, :4] = 0.0  # all-zero windows, as after a ReLU
    return torch.relu(x - 1)  # many exact zeros


CASES = {
    "random": lambda s, g: torch.randn(s, generator=g),
    "tie_heavy": tie_heavy,
    "all_zero": lambda s, g: torch.zeros(s),
    "two_levels": lambda s, g: tie_heavy(s, g, levels=2),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_forms_bit_identical_forward(case: str, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    x = CASES[case]((2, 5, 12, 16), g).to(dtype)
    y = torch.randn(2, 5, 6, 8, generator=g).to(dtype)  # negative values too: zeros must stay +0.0
    ref = reference(x.float(), y.float()).to(dtype) if dtype == torch.float16 else reference(x, y)
    for out in (mask_unpool(x, y), plugin_unpool(x, y)):
        assert out.dtype == dtype
        assert torch.equal(bits(out), bits(ref))


@pytest.mark.parametrize("case", CASES)
def test_forms_bit_identical_backward(case: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = CASES[case]((2, 3, 8, 8), g)
    grad_out = torch.randn(2, 3, 8, 8, generator=g)
    grads = []
    for fn in (reference, mask_unpool, plugin_unpool):
        y = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2)).requires_grad_()
        fn(x, y).backward(grad_out)
        grads.append(y.grad)
    assert torch.equal(grads[0], grads[1])
    assert torch.equal(grads[0], grads[2])


def test_backward_through_pool_matches() -> None:
    """Encoder gradient: pool with indices vs pool without indices + mask unpool, end to end."""
    g = torch.Generator().manual_seed(3)
    base = tie_heavy((1, 4, 8, 8), g)
    results = []
    for mode in ("maxunpool", "mask", "plugin"):
        x = base.clone().requires_grad_()
        pooled, idx = MaxPool2x2(mode)(x)
        out = Unpool2x2(mode)(pooled * 2.0, x, idx)
        out.sum().backward()
        results.append((out.detach(), x.grad))
    for out, grad in results[1:]:
        assert torch.equal(out, results[0][0])
        assert torch.equal(grad, results[0][1])


def test_exactly_one_mask_per_window() -> None:
    x = tie_heavy((1, 2, 6, 6), torch.Generator().manual_seed(4))
    total = sum(m.int() for m in first_argmax_masks(x))
    assert torch.equal(total, torch.ones_like(total))


def test_first_maximum_wins_on_ties() -> None:
    x = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])
    out = mask_unpool(x, torch.tensor([[[[7.0]]]]))
    assert out.flatten().tolist() == [7.0, 0.0, 0.0, 0.0]
    x = torch.tensor([[[[0.0, 2.0], [2.0, 1.0]]]])
    assert mask_unpool(x, torch.tensor([[[[5.0]]]])).flatten().tolist() == [0.0, 5.0, 0.0, 0.0]


def test_plugin_constants_match_engine_header() -> None:
    assert PLUGIN_OP_TYPE == "SegNetMaskUnpool"
    assert PLUGIN_VERSION == "1"


def test_unknown_mode_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'mask'"):
        check_unpool_mode("masc")


class _PoolUnpool(torch.nn.Module):
    """A one-level encoder/decoder, nested a level deep, as in SegNet."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.enc = torch.nn.ModuleList([MaxPool2x2(mode)])
        self.dec = torch.nn.ModuleList([Unpool2x2(mode)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        pooled, idx = self.enc[0](x)
        return self.dec[0](pooled, x, idx), idx


def test_the_default_form_keeps_indices_and_needs_them() -> None:
    """A checkpoint built with no mode runs PyTorch's own MaxUnpool: indices out of the pool, into the unpool."""
    x = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(5))
    pooled, idx = MaxPool2x2()(x)
    assert idx is not None and torch.equal(Unpool2x2()(pooled, x, idx), reference(x, pooled))
    for unpool in (Unpool2x2(), Unpool2x2("maxunpool")):
        with pytest.raises(RuntimeError, match="needs the pooling indices"):
            unpool(pooled, x, None)


def test_the_plugin_form_traces_to_one_op_and_the_mask_form_to_plain_ops() -> None:
    """What the ONNX exporter sees: ``plugin`` one segnet::mask_unpool node (-> the TensorRT plugin), ``mask``
    only standard ops (-> TensorRT's parser); swapping them would ship the wrong graph with equal numbers."""
    from torch.fx.experimental.proxy_tensor import make_fx

    def traced_ops(mode: str) -> set:
        unpool = Unpool2x2(mode)
        graph = make_fx(lambda y, x: unpool(y, x, None))(torch.randn(1, 2, 2, 2), torch.randn(1, 2, 4, 4)).graph
        return {n.target for n in graph.nodes if n.op == "call_function"}

    ops = {mode: traced_ops(mode) for mode in ("mask", "plugin")}
    assert ops["plugin"] == {torch.ops.segnet.mask_unpool.default}
    assert torch.ops.segnet.mask_unpool.default not in ops["mask"] and torch.ops.aten.where.self in ops["mask"]


def test_maxunpool_form_restores_an_odd_pre_pool_size() -> None:
    """An odd feature map pools to floor(H/2); the unpool must return x's own size, not 2 * floor(H/2)."""
    x = torch.randn(1, 2, 7, 9, generator=torch.Generator().manual_seed(6))
    pooled, idx = MaxPool2x2("maxunpool")(x)
    out = Unpool2x2("maxunpool")(pooled, x, idx)
    assert out.shape == x.shape
    assert torch.equal(out[..., :6, :8], reference(x[..., :6, :8], pooled))
    assert not out[..., 6:, :].any() and not out[..., :, 8:].any()


def test_set_unpool_mode_switches_every_nested_layer_and_checks_the_name() -> None:
    x = tie_heavy((1, 3, 8, 8), torch.Generator().manual_seed(7))
    model = _PoolUnpool("mask")
    out_mask, idx = model(x)
    assert idx is None
    assert set_unpool_mode(model, "maxunpool") is model
    out_max, idx = model(x)
    assert idx is not None and torch.equal(out_max, out_mask)
    with pytest.raises(UnknownNameError, match="Did you mean 'plugin'"):
        set_unpool_mode(model, "plugn")
