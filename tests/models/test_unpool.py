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
