"""Image/label transforms on numpy arrays (HWC uint8 RGB image, HW uint8 label), then to tensors.

Geometry is done with OpenCV: images bilinear, labels nearest (labels are never interpolated).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32, scaled to [0, 1] then standardised per channel."""
    x = image.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_pair(image: np.ndarray, label: np.ndarray | None, hw: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize to (H, W): image bilinear (area when shrinking), label nearest."""
    h, w = hw
    if image.shape[:2] == (h, w):
        return image, label
    shrink = h < image.shape[0]
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if label is not None:
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    return image, label


class TrainTransform:
    """Random scale, pad-and-crop, horizontal flip and light colour jitter, then normalise.

    ``base_size`` rescales every frame first (e.g. 180x240 for reduced-size runs); ``crop`` is the
    training crop; ``scale`` the random scale range applied on top of ``base_size``.
    """

    def __init__(self, crop: tuple[int, int], mean: Sequence[float], std: Sequence[float],
                 ignore_index: int, base_size: tuple[int, int] | None = None,
                 scale: tuple[float, float] = (0.75, 1.5), flip: bool = True, jitter: float = 0.2) -> None:
        self.crop, self.mean, self.std = crop, mean, std
        self.ignore_index, self.base_size = ignore_index, base_size
        self.scale, self.flip, self.jitter = scale, flip, jitter

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        h0, w0 = self.base_size or image.shape[:2]
        s = rng.uniform(*self.scale)
        image, label = resize_pair(image, label, (max(8, round(h0 * s)), max(8, round(w0 * s))))
        assert label is not None
        ch, cw = self.crop
        ph, pw = max(ch - image.shape[0], 0), max(cw - image.shape[1], 0)
        if ph or pw:
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=self.ignore_index)
        y = int(rng.integers(0, image.shape[0] - ch + 1))
        x = int(rng.integers(0, image.shape[1] - cw + 1))
        image, label = image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        if self.jitter > 0:
            image = self._colour_jitter(image, rng)
        return (torch.from_numpy(normalize(image, self.mean, self.std)),
                torch.from_numpy(np.ascontiguousarray(label).astype(np.int64)))

    def _colour_jitter(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        j = self.jitter
        x = image.astype(np.float32)
        x *= rng.uniform(1 - j, 1 + j)  # brightness
        mean = x.mean()
        x = (x - mean) * rng.uniform(1 - j, 1 + j) + mean  # contrast
        grey = x.mean(axis=2, keepdims=True)
        x = (x - grey) * rng.uniform(1 - j, 1 + j) + grey  # saturation
        return np.clip(x, 0, 255).astype(np.uint8)


class EvalTransform:
    """Deterministic: optional resize of the image (labels keep full resolution unless asked), normalise."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], size: tuple[int, int] | None = None,
                 resize_label: bool = False) -> None:
        self.mean, self.std, self.size, self.resize_label = mean, std, size, resize_label

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.size is not None:
            resized, rlabel = resize_pair(image, label, self.size)
            image, label = resized, (rlabel if self.resize_label else label)
        assert label is not None
        return (torch.from_numpy(normalize(image, self.mean, self.std)),
                torch.from_numpy(label.astype(np.int64)))
