"""Test-time augmentation for ``toolkit eval --tta``: horizontal flips and several input scales, softmax averaged.

A separate, slower row beside the single-scale score, never the default: infer, parity and bench stay
single-scale, so the number a deployment reproduces is the plain one. The frames go through the same runner
and preprocessing as the plain evaluation (``evaluate.predict_logits``), at the scaled input size; each
pass's logits come back at the frame's resolution, are softmaxed and averaged, and the mean's argmax is scored
at full label resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolkit.backend.base import BaseRunner
from toolkit.core.meta import ModelMeta
from toolkit.errors import ToolkitError
from toolkit.evaluate import iter_frames, open_split, predict_logits
from toolkit.metrics import ConfusionMatrix, SegScores

DEFAULT_SCALES = (0.75, 1.0, 1.25)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=0, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=0, keepdims=True)
    return z


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    if not scales or any(not 0 < s <= 4 for s in scales):
        raise ToolkitError(f"--tta-scales {','.join(map(str, scales))}: expected factors in (0, 4], e.g. 0.75,1,1.25")
    return tuple(scales)


def tta_probabilities(runner: BaseRunner, image: np.ndarray, meta: ModelMeta,
                      scales: Sequence[float] = DEFAULT_SCALES, flip: bool = True) -> np.ndarray:
    """K x H x W class probabilities of one RGB frame: the mean softmax over scales x (plain, mirrored)."""
    base = meta.input_size or image.shape[:2]
    total: np.ndarray | None = None
    passes = 0
    for s in check_scales(scales):
        hw = (max(8, round(base[0] * s)), max(8, round(base[1] * s)))
        for mirrored in (False, True) if flip else (False,):
            frame = np.ascontiguousarray(image[:, ::-1]) if mirrored else image
            logits = predict_logits(runner, frame, meta.dataset.mean, meta.dataset.std, hw)
            probs = _softmax(logits[:, :, ::-1] if mirrored else logits)
            total = probs if total is None else total + probs
            passes += 1
    assert total is not None
    return total / passes


def evaluate_tta(model: str | Path | None, data: str | Path, split: str = "val", device: str = "cpu",
                 limit: int | None = None, scales: Sequence[float] = DEFAULT_SCALES, flip: bool = True,
                 progress: bool = False) -> tuple[SegScores, np.ndarray]:
    """(scores, confusion matrix) of one model on one split with test-time augmentation."""
    from tqdm import tqdm

    from toolkit.backend import make_runner

    ds = open_split(data, split, limit)
    with make_runner(model, device=device) as runner:
        meta = runner.meta
        if meta is None:
            raise ToolkitError(f"{model}: carries no toolkit metadata; --tta needs a toolkit checkpoint or export")
        cm = ConfusionMatrix(meta.num_classes, meta.dataset.ignore_index)
        frames = tqdm(iter_frames(ds), total=len(ds), disable=not progress, desc="eval --tta",
                      unit="img", leave=False)
        for image, label in frames:
            cm.update(tta_probabilities(runner, image, meta, scales, flip).argmax(0), label)
    return cm.scores(), cm.matrix
