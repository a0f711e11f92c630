"""Per-frame kernels of the video pipeline, written with OpenCV table lookups and whole-plane ops.

Each gives bit-identical results to the reference in ``toolkit.evaluate`` / numpy (tests check it), at a
fraction of the cost, so the stages around the model stay a few milliseconds per frame on a 2-core CPU:
normalisation by a 256-entry float table per channel instead of float arithmetic on every pixel (~9x
faster), and argmax by K-1 compare/max/copy passes instead of numpy's strided reduction (9-12x faster;
``python tools/pipeline_costs.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np

from toolkit.core.names import OUTPUT_STRIDE
from toolkit.core.shapes import pad_to_multiple
from toolkit.evaluate import Preprocessed


class FastPreprocess:
    """Same output as ``toolkit.evaluate.preprocess`` (resize, normalise, pad to a multiple of the model's output
    ``stride``), via a lookup table."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], input_size: tuple[int, int] | None,
                 stride: int = OUTPUT_STRIDE) -> None:
        m = np.asarray(mean, np.float32)
        s = np.asarray(std, np.float32)
        # the exact float32 operations of toolkit.data.transforms.normalize, done once per possible value
        values = np.repeat(np.arange(256, dtype=np.float32)[:, None], 3, axis=1) * np.float32(1.0 / 255.0)
        values -= m
        values /= s
        self.luts = [np.ascontiguousarray(values[:, c]).reshape(256, 1) for c in range(3)]  # one per channel
        self.input_size = tuple(input_size) if input_size is not None else None
        self.stride = stride

    def __call__(self, image_rgb: np.ndarray) -> Preprocessed:
        src_hw = image_rgb.shape[:2]
        if self.input_size is not None and self.input_size != tuple(src_hw):
            h, w = self.input_size
            interp = cv2.INTER_AREA if h < src_hw[0] else cv2.INTER_LINEAR
            image_rgb = cv2.resize(image_rgb, (w, h), interpolation=interp)
        h, w = image_rgb.shape[:2]
        hp, wp = pad_to_multiple(h, w, self.stride)
        out = np.empty((1, 3, hp, wp), np.float32)
        out[0, :, h:, :] = 0  # the padding only: the frame's region is written below
        out[0, :, :h, w:] = 0
        # split into planes, then each plane's table lookup writes straight into its padded plane: no
        # H x W x 3 float intermediate and no strided HWC -> CHW copy (half the time of that route)
        for c, plane in enumerate(cv2.split(np.ascontiguousarray(image_rgb))):
            cv2.LUT(plane, self.luts[c], dst=out[0, c, :h, :w])
        return Preprocessed(out, (h, w), src_hw)


@lru_cache(maxsize=4)
def _class_planes(k: int, h: int, w: int) -> np.ndarray:
    """k x h x w uint8 planes holding 0 .. k-1: the sources ``argmax_classes`` copies class indices from."""
    planes = np.repeat(np.arange(k, dtype=np.uint8)[:, None, None], h, axis=1).repeat(w, axis=2)
    planes.setflags(write=False)
    return planes


def argmax_classes(logits: np.ndarray) -> np.ndarray:
    """K x H x W float32 -> H x W uint8 index of the largest logit (first one on ties, as numpy).

    ``logits`` may be a crop of a larger array (rows with a stride): OpenCV reads it in place, no copy.
    Three whole-plane passes per class: compare with the best so far, update the best, copy the class
    index where it won.
    """
    k, h, w = logits.shape
    if k > 255:
        return logits.argmax(0).astype(np.uint8)
    if logits.dtype != np.float32 or logits.strides[-1] != logits.itemsize:
        logits = np.ascontiguousarray(logits, np.float32)
    classes = _class_planes(k, h, w)
    best = np.array(logits[0], np.float32, copy=True)
    idx = np.zeros((h, w), np.uint8)
    greater = np.empty((h, w), np.uint8)
    for c in range(1, k):
        plane = logits[c]
        cv2.compare(plane, best, cv2.CMP_GT, dst=greater)  # 255 where class c beats the best so far (ties: no)
        cv2.max(best, plane, dst=best)
        cv2.copyTo(classes[c], greater, dst=idx)
    return idx
