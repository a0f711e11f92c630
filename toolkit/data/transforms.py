"""Image/label transforms on numpy arrays (HWC uint8 RGB image, HW uint8 label), then to tensors.

Geometry is done with OpenCV: images bilinear, labels nearest (labels are never interpolated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import cv2
import numpy as np
import torch


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32, scaled to [0, 1] then standardised per channel."""
    x = image.astype(np.float32) * (1.0 / 255.0)
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


@overload
def resize_pair(image: np.ndarray, label: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def resize_pair(image: np.ndarray, label: None, hw: tuple[int, int]) -> tuple[np.ndarray, None]: ...


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


def _resize_map(values: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize an HxWxK float map bilinearly (area when shrinking), in channel groups OpenCV accepts."""
    h, w = hw
    if values.shape[:2] == (h, w):
        return np.asarray(values, dtype=np.float32)
    interp = cv2.INTER_AREA if h < values.shape[0] else cv2.INTER_LINEAR
    v = np.ascontiguousarray(values, dtype=np.float32)
    parts = [cv2.resize(np.ascontiguousarray(v[..., c:c + 4]), (w, h), interpolation=interp)
             for c in range(0, v.shape[2], 4)]
    return np.concatenate([p.reshape(h, w, -1) for p in parts], axis=2)


class TrainTransform:
    """Random scale, pad-and-crop, horizontal flip and light colour jitter, then normalise.

    ``base_size`` rescales every frame first (e.g. 180x240 for reduced-size runs); ``crop`` is the
    training crop; ``scale`` the random scale range applied on top of ``base_size``. Padding (when a
    scaled frame is smaller than the crop) is void in the label, so it never counts in the loss.
    ``label_ratio`` r > 1 keeps the label at r times the image's resolution (a student fed 180x240 frames
    scored against the 360x480 labels, where a pole survives): the same crop, r times larger in the label.
    """

    def __init__(self, crop: tuple[int, int], mean: Sequence[float], std: Sequence[float],
                 ignore_index: int, base_size: tuple[int, int] | None = None,
                 scale: tuple[float, float] = (0.75, 1.5), flip: bool = True, jitter: float = 0.2,
                 label_ratio: int = 1) -> None:
        self.crop, self.mean, self.std = crop, mean, std
        self.ignore_index, self.base_size = ignore_index, base_size
        self.scale, self.flip, self.jitter = scale, flip, jitter
        self.label_ratio = label_ratio

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                 extra: np.ndarray | None = None) -> tuple[torch.Tensor, ...]:
        """(image CHW float, label HW int64), plus ``extra`` (an HxWxK float map of the frame, e.g. a
        teacher's logits) as KxHxW float when given: bilinear like the image, cropped and flipped like
        the label, zero in padding. The random draws are the same with or without ``extra``."""
        h0, w0 = self.base_size or image.shape[:2]
        s = rng.uniform(*self.scale)
        out_hw = (max(8, round(h0 * s)), max(8, round(w0 * s)))
        r = self.label_ratio
        full_label = None
        if r > 1:
            full_label = cv2.resize(label, (out_hw[1] * r, out_hw[0] * r), interpolation=cv2.INTER_NEAREST)
        image, label = resize_pair(image, label, out_hw)
        if extra is not None:
            extra = _resize_map(extra, out_hw)
        ch, cw = self.crop
        ph, pw = max(ch - image.shape[0], 0), max(cw - image.shape[1], 0)
        if ph or pw:
            image = cv2.copyMakeBorder(image, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
            label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=self.ignore_index)
            if extra is not None:
                extra = np.pad(extra, ((0, ph), (0, pw), (0, 0)))
        y = int(rng.integers(0, image.shape[0] - ch + 1))
        x = int(rng.integers(0, image.shape[1] - cw + 1))
        image, label = image[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]
        if full_label is not None:
            full_label = cv2.copyMakeBorder(full_label, 0, ph * r, 0, pw * r, cv2.BORDER_CONSTANT,
                                            value=self.ignore_index) if ph or pw else full_label
            label = full_label[y * r:(y + ch) * r, x * r:(x + cw) * r]
        if extra is not None:
            extra = extra[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
            if extra is not None:
                extra = extra[:, ::-1]
        if self.jitter > 0:
            image = self._colour_jitter(image, rng)
        out = (torch.from_numpy(normalize(image, self.mean, self.std)),
               torch.from_numpy(np.ascontiguousarray(label).astype(np.int64)))
        if extra is None:
            return out
        return (*out, torch.from_numpy(np.ascontiguousarray(extra.transpose(2, 0, 1), dtype=np.float32)))

    def _colour_jitter(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        j = self.jitter
        x = image.astype(np.float32)
        x *= rng.uniform(1 - j, 1 + j)  # brightness
        mean = x.mean()
        x = (x - mean) * rng.uniform(1 - j, 1 + j) + mean  # contrast
        grey = x.mean(axis=2, keepdims=True)
        x = (x - grey) * rng.uniform(1 - j, 1 + j) + grey  # saturation
        jittered: np.ndarray = np.clip(x, 0, 255).astype(np.uint8)  # numpy types mean() as Any, hence x
        return jittered


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
        return (torch.from_numpy(normalize(image, self.mean, self.std)),
                torch.from_numpy(label.astype(np.int64)))
