"""CamVid reader for the SegNet list-file layout: ``NAME.txt`` lines of ``image_path label_path``.

Any folder of that shape works (a path argument, never a hard-coded one); the split is named by its
list file. Labels are single-channel PNGs with class ids, the ignore label from classes.json.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit.core.dataset_info import DatasetInfo, load_classes_json
from toolkit.errors import DatasetError

Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


def read_image_rgb(path: Path) -> np.ndarray:
    """HWC uint8 RGB; one clear error for a missing or undecodable file."""
    if not path.is_file():
        raise DatasetError(f"{path}: image not found")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """HW uint8 class-id map."""
    if not path.is_file():
        raise DatasetError(f"{path}: label not found")
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise DatasetError(f"{path}: not a readable label image")
    if lab.ndim != 2:
        raise DatasetError(f"{path}: label must be single-channel class ids, got shape {lab.shape}")
    return lab


def check_label_range(label: np.ndarray, path: Path, info: DatasetInfo) -> None:
    """Every id is a class of classes.json or its ignore label; otherwise one clear error, not an index error
    deep in the loss or the confusion matrix (issue 25)."""
    k = info.num_classes
    bad = (label >= k) & (label != info.ignore_index)
    if bad.any():
        ids = np.unique(label[bad])
        shown = ", ".join(str(int(i)) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")
        raise DatasetError(f"{path}: label ids {shown} ({int(bad.sum())} pixels) are not classes of classes.json "
                           f"(ids 0..{k - 1}, ignore {info.ignore_index}); fix the annotation or classes.json")


def list_splits(root: str | Path) -> list[str]:
    """Split names available under ``root`` (one per ``*.txt`` list file)."""
    return sorted(p.stem for p in Path(root).glob("*.txt"))


class CamVid(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One split of a CamVid-layout folder; ``cache=True`` keeps decoded frames in memory."""

    def __init__(self, root: str | Path, split: str = "train", transform: Transform | None = None,
                 cache: bool = False, seed: int = 0, limit: int | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found (expected a CamVid-layout folder "
                               "with classes.json and NAME.txt list files)")
        self.info: DatasetInfo = load_classes_json(self.root / "classes.json")
        list_file = self.root / f"{split}.txt"
        if not list_file.is_file():
            raise DatasetError(f"{list_file}: split '{split}' not found; available: "
                               f"{', '.join(list_splits(self.root)) or 'none'}")
        self.samples: list[tuple[Path, Path]] = []
        for n, line in enumerate(list_file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DatasetError(f"{list_file}:{n}: expected 'image_path label_path', got {line!r}")
            self.samples.append((self.root / parts[0], self.root / parts[1]))
        if limit is not None:
            self.samples = self.samples[:limit]
        if not self.samples:
            raise DatasetError(f"{list_file}: no samples listed")
        self.split, self.transform, self.seed, self.epoch = split, transform, seed, 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def name(self, index: int) -> str:
        """The frame's image file name (SegDataset)."""
        return self.samples[index][0].name

    def set_epoch(self, epoch: int) -> None:
        """Augmentation randomness is a function of (seed, epoch, index): resumable and worker-safe."""
        self.epoch = epoch

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded (image RGB uint8, label uint8) without any transform."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        img_path, lab_path = self.samples[index]
        image, label = read_image_rgb(img_path), read_label(lab_path)
        if image.shape[:2] != label.shape:
            raise DatasetError(f"{img_path}: image {image.shape[:2]} and label {label.shape} sizes differ")
        check_label_range(label, lab_path, self.info)
        if self._cache is not None:
            self._cache[index] = (image, label)
        return image, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.load(index)
        if self.transform is None:
            return torch.from_numpy(image.copy()), torch.from_numpy(label.astype(np.int64))
        return self.transform(image, label, self.augment_rng(index))

    def augment_rng(self, index: int) -> np.random.Generator:
        """The augmentation randomness of ``index`` this epoch (a pure function of seed, epoch, index)."""
        return np.random.default_rng([self.seed, self.epoch, index])
