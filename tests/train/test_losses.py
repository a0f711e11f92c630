"""The three losses against hand computations, and their handling of the void label."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segnet_train.losses import (
    BalancedCrossEntropy,
    WeightedCrossEntropy,
    balanced_betas,
    class_pixel_counts,
    make_loss,
    median_frequency_weights,
)

IGNORE = 9


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_bce_matches_hand_computation() -> None:
    # two labelled pixels and one void pixel, three classes
    z = [[1.0, 0.0, -1.0], [0.5, 2.0, 0.0], [3.0, 3.0, 3.0]]
    y = [0, 1, IGNORE]
    betas = [0.7, 0.8, 0.5]
    expected = 0.0
    for logits, t in zip(z[:2], y[:2], strict=True):
        p = _softmax(logits)
        expected += -betas[t] * math.log(p[t])
        expected += sum(-(1 - betas[k]) * math.log(1 - p[k]) for k in range(3) if k != t)
    expected /= 2  # mean over the labelled pixels only
    logits = torch.tensor(z).T.reshape(1, 3, 1, 3)
    target = torch.tensor(y).reshape(1, 1, 3)
    got = BalancedCrossEntropy(betas, ignore_index=IGNORE)(logits, target)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_bce_two_classes_is_twice_the_papers_binary_form() -> None:
    # K = 2 with beta_k = 1 - f_k: -beta log p_t - (1 - beta) log (1 - p) doubled (docs/MODEL.md)
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 4, 5)
    target = torch.randint(0, 2, (2, 4, 5))
    f1 = float((target == 1).float().mean())
    beta = 1 - f1  # the paper's beta: share of negatives
    p = torch.softmax(logits, 1)[:, 1]
    binary = torch.where(target == 1, -beta * torch.log(p), -(1 - beta) * torch.log(1 - p)).mean()
    counts = np.bincount(target.reshape(-1).numpy(), minlength=2)
    got = BalancedCrossEntropy(balanced_betas(counts), ignore_index=IGNORE)(logits, target)
    # rel 1e-5: float32 softmax+log in two formulations (a few ulps each, 1.2e-7 relative); a wrong beta moves it by
    # >1e-2
    assert got.item() == pytest.approx(2 * binary.item(), rel=1e-5)


def test_ce_and_wce_match_torch_and_hand_weights() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, :] = IGNORE
    ce = make_loss("ce", None, None, IGNORE)(logits, target)
    assert ce.item() == pytest.approx(F.cross_entropy(logits, target, ignore_index=IGNORE).item(), rel=1e-6)
    w = [1.0, 2.0, 0.5]
    got = WeightedCrossEntropy(w, IGNORE)(logits, target)
    nll = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    weights = torch.tensor(w)[target.clamp(max=2)] * (target != IGNORE)
    assert got.item() == pytest.approx(float((nll * weights).sum() / (target != IGNORE).sum()), rel=1e-6)


def test_median_frequency_weights_by_hand() -> None:
    # image A: 6 px of class 0, 2 of class 1; image B: 4 of class 0, 4 of class 2 (and 2 void)
    a = np.array([0] * 6 + [1] * 2)
    b = np.array([0] * 4 + [2] * 4 + [IGNORE] * 2)
    counts, present = class_pixel_counts([a, b], 4, IGNORE)
    assert counts.tolist() == [10, 2, 4, 0]
    assert present.tolist() == [16, 8, 8, 0]
    # freq = [10/16, 2/8, 4/8]; median 0.5 -> weights [0.8, 2, 1]; unseen class 3 -> 0
    assert median_frequency_weights(counts, present).tolist() == pytest.approx([0.8, 2.0, 1.0, 0.0])
    assert balanced_betas(counts).tolist() == pytest.approx([1 - 10 / 16, 1 - 2 / 16, 1 - 4 / 16, 1.0])


@pytest.mark.parametrize("name", ["ce", "bce", "wce"])
def test_all_void_batch_gives_zero_and_saturated_logits_stay_finite(name: str) -> None:
    counts, present = np.array([5, 3, 2]), np.array([10, 10, 10])
    loss = make_loss(name, counts, present, IGNORE)
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    assert loss(logits, torch.full((1, 2, 2), IGNORE)).item() == 0.0
    big = torch.tensor([[[[80.0]], [[-80.0]], [[0.0]]]], requires_grad=True)  # confidently wrong
    value = loss(big, torch.tensor([[[1]]]))
    value.backward()
    assert math.isfinite(value.item()) and value.item() > 10
    assert torch.isfinite(big.grad).all() and big.grad.abs().sum() > 0


def test_unknown_loss_is_a_clear_error() -> None:
    from toolkit.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="bce"):
        make_loss("bcee", None, None, IGNORE)
