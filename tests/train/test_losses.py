"""The three losses against hand computations, and their handling of the void label."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segnet_train.losses import (
    BalancedCrossEntropy,
    HardPixelMining,
    WeightedCrossEntropy,
    at_label_size,
    balanced_betas,
    class_pixel_counts,
    enet_weights,
    make_loss,
    median_frequency_weights,
    positive_weights,
)
from toolkit.errors import UnknownNameError

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


# --- edges the mutation run found untested (docs/MUTATION.md, train/losses.py) ---

COUNTS3, PRESENT3 = np.array([5, 3, 2]), np.array([10, 10, 10])


def test_a_class_of_one_pixel_counts_its_image() -> None:
    # the image holding a single pixel of class 1 counts towards class 1's "images containing it" total
    counts, present = class_pixel_counts([np.array([[0, 0, 1], [0, IGNORE, 0]])], 3, IGNORE)
    assert counts.tolist() == [4, 1, 0] and present.tolist() == [5, 5, 0]


def test_betas_need_a_labelled_pixel_and_one_is_enough() -> None:
    for fn in (balanced_betas, lambda c: median_frequency_weights(c, np.array([4, 4]))):
        with pytest.raises(ValueError, match="no labelled pixels"):
            fn(np.array([0, 0]))
    assert balanced_betas(np.array([0, 1])).tolist() == [1.0, 0.0]
    # one pixel of class 1 in one image of one labelled pixel: its frequency is 1, the median's too
    assert median_frequency_weights(np.array([0, 1]), np.array([0, 1])).tolist() == [0.0, 1.0]


def test_median_frequency_skips_classes_never_seen_even_with_a_total() -> None:
    # class 2 has images counted (a total) but no pixel: weight 0, and it does not drag the median down
    w = median_frequency_weights(np.array([2, 6, 0]), np.array([8, 8, 8]))
    assert w.tolist() == pytest.approx([0.5 / 0.25, 0.5 / 0.75, 0.0])


def test_each_class_weighting_is_its_own_formula_rescaled() -> None:
    share = COUNTS3 / COUNTS3.sum()
    for name, raw in (("enet", enet_weights(COUNTS3)), ("medfreq", median_frequency_weights(COUNTS3, PRESENT3))):
        w = positive_weights(name, COUNTS3, PRESENT3)
        assert w is not None and w == pytest.approx(raw / float((share * raw).sum()))
    with pytest.raises(UnknownNameError, match="unknown class weighting 'enett'.*'enet'"):
        positive_weights("enett", COUNTS3, PRESENT3)


def test_bce_checks_its_betas_and_weights() -> None:
    BalancedCrossEntropy(balanced_betas(np.array([5, 0])))  # 0 and 1 are valid betas (absent class: 1)
    for bad in ([0.5, 1.2], [-0.1, 0.5], [[0.5, 0.5]]):
        with pytest.raises(ValueError, match="betas must be a 1-D vector in \\[0, 1\\]"):
            BalancedCrossEntropy(bad)
    with pytest.raises(ValueError, match="2 positive weights for 3 classes"):
        BalancedCrossEntropy([0.5, 0.5, 0.5], positive_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="logits have 2 classes, betas 3"):
        BalancedCrossEntropy([0.5, 0.5, 0.5])(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", ["ce", "bce", "wce"])
def test_default_void_label_and_a_single_labelled_pixel(name: str) -> None:
    """255 is the void label unless told otherwise; one labelled pixel averages over one, not a floor."""
    loss = make_loss(name, COUNTS3, PRESENT3, 255)
    default = (BalancedCrossEntropy(balanced_betas(COUNTS3)) if name == "bce" else
               WeightedCrossEntropy(None if name == "ce" else median_frequency_weights(COUNTS3, PRESENT3)))
    logits = torch.randn(1, 3, 1, 2, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[[0, 255]]])  # class 0: median-frequency weight 0.6, not 1
    one = loss(logits, target)
    per_pixel, valid = loss.per_pixel(logits, target)
    assert valid.tolist() == [[[True, False]]] and per_pixel[0, 0, 1] == 0
    assert one.item() == pytest.approx(per_pixel[0, 0, 0].item(), rel=1e-6) and one.item() > 0
    assert default(logits, target).item() == pytest.approx(one.item(), rel=1e-6)


@pytest.mark.parametrize("name", ["ce", "bce", "wce"])
def test_hard_pixel_mining_edges(name: str) -> None:
    base = make_loss(name, COUNTS3, PRESENT3, IGNORE)
    logits = torch.randn(1, 3, 3, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    target = torch.randint(0, 3, (1, 3, 4), generator=torch.Generator().manual_seed(2))
    per_pixel, valid = base.per_pixel(logits, target)
    assert valid.all() and torch.allclose(per_pixel.mean(), base(logits, target))
    # a share below one pixel keeps exactly one: the hardest
    assert torch.allclose(HardPixelMining(base, 0.01)(logits, target), per_pixel.max())
    # a single labelled pixel is its own loss; an all-void batch is 0 with a (zero) gradient
    single = torch.full_like(target, IGNORE)
    single[0, 1, 2] = 1
    assert torch.allclose(HardPixelMining(base, 0.5)(logits, single), base(logits, single))
    void = HardPixelMining(base, 0.5)(logits, torch.full_like(target, IGNORE))
    void.backward()
    assert void.item() == 0.0 and logits.grad is not None and not logits.grad.any()
    with pytest.raises(ValueError, match="hard-pixel share 1.5"):
        HardPixelMining(base, 1.5)


def test_make_loss_passes_on_class_weights_and_hard_pixels_and_needs_both_counts() -> None:
    logits = torch.randn(1, 3, 2, 4, generator=torch.Generator().manual_seed(3))
    target = torch.randint(0, 3, (1, 2, 4), generator=torch.Generator().manual_seed(4))
    for weighting in ("enet", "medfreq"):
        loss = make_loss("bce", COUNTS3, PRESENT3, IGNORE, class_weights=weighting)
        want = BalancedCrossEntropy(balanced_betas(COUNTS3), IGNORE, positive_weights(weighting, COUNTS3, PRESENT3))
        assert loss.positive_weights is not None
        assert torch.allclose(loss(logits, target), want(logits, target))
    mined = make_loss("ce", None, None, IGNORE, hard_pixels=0.25)
    per_pixel, _ = WeightedCrossEntropy(None, IGNORE).per_pixel(logits, target)
    assert torch.allclose(mined(logits, target), per_pixel.flatten().sort(descending=True).values[:2].mean())
    for counts, present in ((COUNTS3, None), (None, PRESENT3)):
        with pytest.raises(ValueError, match="loss 'bce' needs class pixel counts"):
            make_loss("bce", counts, present, IGNORE)


def test_at_label_size_is_bilinear_with_half_pixel_centres() -> None:
    """``--label-res full``: logits at the model's output size are upsampled to the labels' before the loss.
    By hand for a 1 x 2 row to 1 x 4 with half-pixel centres (align_corners=False): sample points -0.25 (clamped),
    0.25, 0.75, 1.25 (clamped) give 0, 0.5, 1.5, 2 (corner-aligned would give 0, 2/3, 4/3, 2; nearest 0, 0, 2, 2)."""
    logits = torch.tensor([[[[0.0, 2.0]]]])
    labels = torch.zeros(1, 1, 4, dtype=torch.long)
    up = at_label_size(logits, labels)
    assert up.shape == (1, 1, 1, 4) and up[0, 0, 0].tolist() == [0.0, 0.5, 1.5, 2.0]
    same = torch.zeros(1, 1, 2, dtype=torch.long)
    assert at_label_size(logits, same) is logits  # already at the labels' size: no copy, no resampling
