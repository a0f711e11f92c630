"""Segmentation losses: ``ce``, ``bce`` (the paper's balanced cross-entropy for K classes) and ``wce``.

All take logits N x K x H x W and labels N x H x W, skip the ignore (void) label, and average over
the labelled pixels. The K-class form of B-CE is derived in docs/MODEL.md ("Balanced cross-entropy").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from toolkit.errors import ToolkitError, UnknownNameError, suggest

LOSSES = ("ce", "bce", "wce")
CLASS_WEIGHTS = ("none", "enet", "medfreq")  # --class-weights: on B-CE's positive term (docs/MODEL.md)
ENET_C = 1.10  # ENet's 1 / ln(c + p_k)
#: floor for 1 - p_k inside log(1 - p_k): keeps the one-vs-rest negative term finite in fp32/bf16.
NEG_EPS = 1e-6


def class_pixel_counts(labels: Iterable[np.ndarray], num_classes: int, ignore_index: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per-class pixel counts, and per-class counts of pixels in the images where the class appears."""
    counts = np.zeros(num_classes, np.int64)
    present_total = np.zeros(num_classes, np.int64)
    for lab in labels:
        lab = np.asarray(lab).reshape(-1)
        c = np.bincount(lab[lab != ignore_index].astype(np.int64), minlength=num_classes)[:num_classes]
        counts += c
        present_total += np.where(c > 0, int((lab != ignore_index).sum()), 0)
    return counts, present_total


def balanced_betas(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """beta_k = 1 - f_k, f_k the class's share of labelled pixels (the K-class HED/paper beta)."""
    c = np.asarray(counts, np.float64)
    if c.sum() <= 0:
        raise ValueError("class counts are all zero: no labelled pixels")
    return 1.0 - c / c.sum()


def median_frequency_weights(counts: Sequence[int] | np.ndarray, present_total: Sequence[int] | np.ndarray
                             ) -> np.ndarray:
    """SegNet's weights: median(freq) / freq_k, freq_k = pixels of k / pixels of images containing k.

    A class never seen gets weight 0 (it cannot be a target anyway)."""
    c = np.asarray(counts, np.float64)
    t = np.asarray(present_total, np.float64)
    freq = np.divide(c, t, out=np.zeros_like(c), where=t > 0)
    seen = freq > 0
    if not seen.any():
        raise ValueError("class counts are all zero: no labelled pixels")
    med = float(np.median(freq[seen]))
    return np.divide(med, freq, out=np.zeros_like(freq), where=seen)


def enet_weights(counts: Sequence[int] | np.ndarray, c: float = ENET_C) -> np.ndarray:
    """ENet's class weights 1 / ln(c + p_k), p_k the class's share of labelled pixels (Paszke et al. 2016)."""
    share = 1.0 - balanced_betas(counts)
    return 1.0 / np.log(c + share)


def positive_weights(name: str, counts: np.ndarray, present_total: np.ndarray) -> np.ndarray | None:
    """``--class-weights``: per-class factors on B-CE's positive term, scaled so that their pixel-weighted mean
    is 1 (the loss keeps the paper's scale, so the learning rate transfers); ``none``: None."""
    if name == "none":
        return None
    if name not in CLASS_WEIGHTS:
        raise UnknownNameError(f"unknown class weighting '{name}': {suggest(name, list(CLASS_WEIGHTS))}")
    w = enet_weights(counts) if name == "enet" else median_frequency_weights(counts, present_total)
    share = 1.0 - balanced_betas(counts)
    return w / float((share * w).sum())


class HardPixelMining(nn.Module):
    """Online hard-pixel mining: the mean of the hardest ``keep`` share of labelled pixels' losses (at least
    one pixel), so the many easy road and sky pixels stop outvoting thin classes late in training."""

    def __init__(self, loss: nn.Module, keep: float) -> None:
        super().__init__()
        if not 0 < keep <= 1:
            raise ValueError(f"hard-pixel share {keep}: expected a fraction in (0, 1]")
        self.loss, self.keep = loss, keep

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        per_pixel, valid = self.loss.per_pixel(logits, target)
        values = per_pixel[valid]
        if values.numel() == 0:
            return per_pixel.sum() * 0
        k = max(1, math.ceil(self.keep * values.numel()))
        return torch.topk(values, k, sorted=False).values.mean()


class BalancedCrossEntropy(nn.Module):
    """One-vs-rest balanced CE over the softmax, per-class beta (see docs/MODEL.md).

    For a pixel of class y: L = -beta_y log p_y - sum_{k != y} (1 - beta_k) log(1 - p_k),
    averaged over labelled pixels. With K = 2 and beta_0 = 1 - beta_1 this is the paper's binary
    -beta_t log p_t plus the matching negative term.
    """

    def __init__(self, betas: Sequence[float] | np.ndarray | Tensor, ignore_index: int = 255,
                 positive_weights: Sequence[float] | np.ndarray | None = None) -> None:
        super().__init__()
        b = torch.as_tensor(np.asarray(betas, np.float32))
        if b.dim() != 1 or bool(((b < 0) | (b > 1)).any()):
            raise ValueError(f"betas must be a 1-D vector in [0, 1], got {b.tolist()}")
        self.register_buffer("betas", b)
        # class weights on the positive term only (-w_y beta_y log p_y); None: the paper's loss
        w = None if positive_weights is None else torch.as_tensor(np.asarray(positive_weights, np.float32))
        if w is not None and w.shape != b.shape:
            raise ValueError(f"{w.numel()} positive weights for {b.numel()} classes")
        self.register_buffer("positive_weights", w)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        per_pixel, valid = self.per_pixel(logits, target)
        return per_pixel.sum() / valid.sum().clamp(min=1)

    def per_pixel(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """(loss of every pixel, 0 on void; mask of the labelled pixels)."""
        k = logits.shape[1]
        if k != self.betas.numel():
            raise ValueError(f"logits have {k} classes, betas {self.betas.numel()}")
        logp = F.log_softmax(logits.float(), dim=1)  # N K H W
        valid = target != self.ignore_index
        safe_t = torch.where(valid, target, torch.zeros_like(target))
        onehot = F.one_hot(safe_t, k).permute(0, 3, 1, 2).to(logp.dtype)  # N K H W
        log_neg = torch.log(torch.clamp(-torch.expm1(logp), min=NEG_EPS))  # log(1 - p_k)
        beta = self.betas.view(1, k, 1, 1).to(logp.dtype)
        pos = beta if self.positive_weights is None else beta * self.positive_weights.view(1, k, 1, 1).to(logp.dtype)
        per_class = -(onehot * pos * logp + (1 - onehot) * (1 - beta) * log_neg)
        return per_class.sum(1) * valid.to(logp.dtype), valid


class WeightedCrossEntropy(nn.Module):
    """Class-weighted CE normalised by the labelled pixel count (not by the weight sum, as SegNet's Caffe did)."""

    def __init__(self, weights: Sequence[float] | np.ndarray | Tensor | None, ignore_index: int = 255) -> None:
        super().__init__()
        self.register_buffer("weights", None if weights is None else torch.as_tensor(np.asarray(weights, np.float32)))
        self.ignore_index = ignore_index

    def per_pixel(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """(loss of every pixel, 0 on void; mask of the labelled pixels)."""
        loss = F.cross_entropy(logits.float(), target, weight=self.weights, ignore_index=self.ignore_index,
                               reduction="none")
        return loss, target != self.ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        loss = F.cross_entropy(logits.float(), target, weight=self.weights, ignore_index=self.ignore_index,
                               reduction="sum")
        return loss / (target != self.ignore_index).sum().clamp(min=1)


def make_loss(name: str, counts: np.ndarray | None, present_total: np.ndarray | None,
              ignore_index: int, class_weights: str = "none", hard_pixels: float | None = None) -> nn.Module:
    """The named loss; ``bce``/``wce`` need the training set's class counts. ``class_weights`` (B-CE only)
    weights its positive term; ``hard_pixels`` keeps that share of the hardest pixels (any loss)."""
    loss = _base_loss(name, counts, present_total, ignore_index, class_weights)
    return loss if hard_pixels is None else HardPixelMining(loss, hard_pixels)


def _base_loss(name: str, counts: np.ndarray | None, present_total: np.ndarray | None, ignore_index: int,
               class_weights: str) -> nn.Module:
    if class_weights != "none" and name != "bce":
        raise ToolkitError(f"--class-weights {class_weights} weights B-CE's positive term: it needs --loss bce "
                               f"(got --loss {name}; wce already carries median-frequency weights)")
    if name == "ce":
        return WeightedCrossEntropy(None, ignore_index)
    if name not in LOSSES:
        raise UnknownNameError(f"unknown loss '{name}': {suggest(name, list(LOSSES))}")
    if counts is None or present_total is None:
        raise ValueError(f"loss '{name}' needs class pixel counts of the training set")
    if name == "bce":
        return BalancedCrossEntropy(balanced_betas(counts), ignore_index,
                                    positive_weights(class_weights, counts, present_total))
    return WeightedCrossEntropy(median_frequency_weights(counts, present_total), ignore_index)


def at_label_size(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Logits bilinearly upsampled to the labels' size when they are smaller (``--label-res full``), else as is."""
    if logits.shape[-2:] == labels.shape[-2:]:
        return logits
    return F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
