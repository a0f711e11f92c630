"""Frame -> class map through any runner, and whole-split evaluation with the one metrics module.

Used by ``eval``, ``parity`` and ``infer`` alike, so every number is computed the same way: the frame
is resized to the model's input size (if it has one and differs), padded to a multiple of 8, run,
cropped, and the logits are resized back to the label's resolution before the argmax.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.backend.base import INPUT_NAME, BaseRunner
from toolkit.core.shapes import pad_to_multiple
from toolkit.data.transforms import normalize
from toolkit.metrics import ConfusionMatrix, SegScores


@dataclass
class Preprocessed:
    """A normalised, padded batch of one frame and how to undo the geometry."""

    tensor: np.ndarray  # 1 x 3 x Hp x Wp float32
    valid_hw: tuple[int, int]  # region of the padded tensor holding the (resized) frame
    source_hw: tuple[int, int]  # the frame's original size


def preprocess(image_rgb: np.ndarray, mean: Sequence[float], std: Sequence[float],
               input_size: tuple[int, int] | None = None) -> Preprocessed:
    """RGB uint8 frame -> model input: optional resize, normalise, zero-pad bottom/right to a multiple of 8."""
    src_hw = image_rgb.shape[:2]
    if input_size is not None and tuple(input_size) != tuple(src_hw):
        h, w = input_size
        interp = cv2.INTER_AREA if h < src_hw[0] else cv2.INTER_LINEAR
        image_rgb = cv2.resize(image_rgb, (w, h), interpolation=interp)
    x = normalize(image_rgb, mean, std)
    h, w = x.shape[1:]
    hp, wp = pad_to_multiple(h, w)
    ph, pw = hp - h, wp - w
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw)))
    return Preprocessed(x[None], (h, w), src_hw)


def postprocess_logits(logits: np.ndarray, pre: Preprocessed, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """1 x K x Hp x Wp logits -> K x H x W float32 at ``out_hw`` (default: the source frame size)."""
    h, w = pre.valid_hw
    lg = logits[0, :, :h, :w]
    oh, ow = out_hw or pre.source_hw
    if (oh, ow) != (h, w):
        lg = cv2.resize(np.ascontiguousarray(lg.transpose(1, 2, 0)), (ow, oh), interpolation=cv2.INTER_LINEAR)
        lg = lg.transpose(2, 0, 1) if lg.ndim == 3 else lg[None]
    return np.ascontiguousarray(lg, dtype=np.float32)


def predict_logits(runner: BaseRunner, image_rgb: np.ndarray, mean: Sequence[float], std: Sequence[float],
                   input_size: tuple[int, int] | None = None) -> np.ndarray:
    """K x H x W logits for one RGB frame at its own resolution."""
    pre = preprocess(image_rgb, mean, std, input_size)
    (logits,) = runner.infer({INPUT_NAME: pre.tensor}).values()
    return postprocess_logits(logits, pre)


def iter_frames(dataset: object, indices: Iterable[int] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8, label) pairs of a dataset exposing ``load(i)`` (CamVid, SyntheticScenes)."""
    for i in indices if indices is not None else range(len(dataset)):  # type: ignore[arg-type]
        yield dataset.load(i)  # type: ignore[attr-defined]


def evaluate_runner(runner: BaseRunner, dataset: object, num_classes: int, ignore_index: int,
                    mean: Sequence[float], std: Sequence[float], input_size: tuple[int, int] | None = None,
                    progress: bool = False) -> SegScores:
    """mIoU and friends of one runner over a whole split, at the labels' full resolution."""
    from tqdm import tqdm

    cm = ConfusionMatrix(num_classes, ignore_index)
    frames = iter_frames(dataset)
    for image, label in tqdm(frames, total=len(dataset), disable=not progress, desc=runner.name,  # type: ignore[arg-type]
                             unit="img", leave=False):
        cm.update(predict_logits(runner, image, mean, std, input_size).argmax(0), label)
    return cm.scores()
