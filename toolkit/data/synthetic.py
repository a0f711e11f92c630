"""Procedural street-like scenes with exact per-pixel labels: no download, milliseconds per frame.

Used by the tests and the embedded demo. Every sample is a pure function of (seed, index): sky and
road bands, then rectangles, ellipses, triangles and thin poles, each class with its own colour and
texture (stripe frequency and orientation) so a small network can learn them, plus a few void blobs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit.core.dataset_info import DatasetInfo
from toolkit.data.camvid import Transform
from toolkit.errors import InvalidValueError

# `--data synthetic`: the training and validation scenes (training's val seed is its --seed plus the offset)
SYNTHETIC_TRAIN, SYNTHETIC_VAL, SYNTHETIC_SIZE = 64, 16, (96, 128)
SYNTHETIC_VAL_SEED_OFFSET = 7919

SYNTHETIC_CLASSES = ("sky", "road", "building", "car", "pole", "tree")
SYNTHETIC_PALETTE = ((128, 128, 128), (128, 64, 128), (128, 0, 0), (64, 0, 128), (192, 192, 128),
                     (128, 128, 0))
SYNTHETIC_IGNORE = 255


def synthetic_info(num_classes: int = len(SYNTHETIC_CLASSES)) -> DatasetInfo:
    """Label space of the synthetic scenes (the first ``num_classes`` classes, at least 2)."""
    if not 2 <= num_classes <= len(SYNTHETIC_CLASSES):
        raise InvalidValueError(f"num_classes must be 2..{len(SYNTHETIC_CLASSES)}, got {num_classes}")
    return DatasetInfo(SYNTHETIC_CLASSES[:num_classes], SYNTHETIC_PALETTE[:num_classes],
                       ignore_index=SYNTHETIC_IGNORE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                       name="synthetic scenes")


def _texture(cls: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Class-specific stripes (frequency, angle) plus noise, as an HxWx3 float offset."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = cls * np.pi / 5
    freq = 0.15 + 0.12 * (cls % 3)
    stripes = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6.28))
    noise = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    offset: np.ndarray = (18 * stripes[..., None] + noise).repeat(3, axis=2)  # numpy's mgrid unpacks as Any
    return offset


def make_scene(index: int, size: tuple[int, int] = (96, 128), num_classes: int = 6, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """One (RGB uint8 image, uint8 label) pair, determined by (seed, index)."""
    rng = np.random.default_rng([seed, index])
    h, w = size
    label = np.zeros((h, w), np.uint8)
    horizon = int(h * rng.uniform(0.35, 0.55))
    label[horizon:] = 1
    shapes = int(rng.integers(3, 8))
    for _ in range(shapes):
        cls = int(rng.integers(2, num_classes)) if num_classes > 2 else 1
        kind = rng.integers(0, 4)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(h // 5, h))
        sx, sy = int(rng.integers(w // 16, w // 4)), int(rng.integers(h // 16, h // 3))
        if kind == 0:
            cv2.rectangle(label, (cx - sx, cy - sy), (cx + sx, cy + sy), cls, -1)
        elif kind == 1:
            cv2.ellipse(label, (cx, cy), (sx, max(2, sy // 2)), 0, 0, 360, cls, -1)
        elif kind == 2:
            pts = np.array([[cx, cy - sy], [cx - sx, cy + sy], [cx + sx, cy + sy]], np.int32)
            cv2.fillPoly(label, [pts], cls)
        else:
            cv2.rectangle(label, (cx, cy - 2 * sy), (cx + max(2, w // 40), cy + sy), cls, -1)
    image = np.zeros((h, w, 3), np.float32)
    for cls in np.unique(label):
        m = label == cls
        colour = np.asarray(SYNTHETIC_PALETTE[int(cls)], np.float32) * 0.8 + 20
        image[m] = (colour + _texture(int(cls), h, w, rng))[m]
    for _ in range(int(rng.integers(0, 3))):  # void blobs: random colour, ignored label
        cx, cy, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(2, max(3, h // 12)))
        blob = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(image, (cx, cy), r, blob, -1)
        cv2.circle(label, (cx, cy), r, SYNTHETIC_IGNORE, -1)
    return np.clip(image, 0, 255).astype(np.uint8), label


class SyntheticScenes(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A seeded, infinite-quality stand-in for CamVid with the same interface (a SegDataset, and set_epoch)."""

    def __init__(self, length: int = 32, size: tuple[int, int] = (96, 128), num_classes: int = 6,
                 seed: int = 0, transform: Transform | None = None) -> None:
        self.length, self.size, self.seed, self.transform, self.epoch = length, size, seed, transform, 0
        self.info = synthetic_info(num_classes)

    def __len__(self) -> int:
        return self.length

    def name(self, index: int) -> str:
        return f"frame {index}"

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return make_scene(index, self.size, self.info.num_classes, self.seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.load(index)
        if self.transform is None:
            return torch.from_numpy(image), torch.from_numpy(label.astype(np.int64))
        return self.transform(image, label, self.augment_rng(index))

    def augment_rng(self, index: int) -> np.random.Generator:
        """The augmentation randomness of ``index`` this epoch (a pure function of seed, epoch, index)."""
        return np.random.default_rng([self.seed, self.epoch, index, 1])


def write_synthetic_camvid(root: str | Path, splits: dict[str, int] | None = None,
                           size: tuple[int, int] = (96, 128), num_classes: int = 6, seed: int = 0) -> Path:
    """Write synthetic scenes as a CamVid-layout folder (PNGs, list files, classes.json) for tests/demos."""
    import json

    root = Path(root)
    info = synthetic_info(num_classes)
    offset = 0
    for split, n in (splits or {"train": 16, "val": 8}).items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            image, label = make_scene(offset + i, size, num_classes, seed)
            name = f"{split}_{i:04d}.png"
            cv2.imwrite(str(root / split / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(root / f"{split}annot" / name), label)
            lines.append(f"{split}/{name} {split}annot/{name}")
        offset += n
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    classes = [{"id": i, "name": n, "color": list(c)} for i, (n, c) in
               enumerate(zip(info.class_names, info.palette, strict=True))]
    (root / "classes.json").write_text(json.dumps(
        {"name": info.name, "ignore_index": info.ignore_index, "classes": classes,
         "void": {"id": info.ignore_index, "name": "void", "color": [0, 0, 0]}}, indent=1))
    return root
