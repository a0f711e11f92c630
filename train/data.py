"""Training/validation datasets for a run: a CamVid-layout folder, or ``synthetic`` scenes (no download)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from toolkit.core.dataset_info import DatasetInfo
from toolkit.core.names import OUTPUT_STRIDE
from toolkit.data import CamVid, SyntheticScenes, TrainTransform
from toolkit.data.synthetic import SYNTHETIC_SIZE, SYNTHETIC_TRAIN, SYNTHETIC_VAL, SYNTHETIC_VAL_SEED_OFFSET
from toolkit.errors import DatasetError

SYNTHETIC = "synthetic"


@dataclass
class RunData:
    train: CamVid | SyntheticScenes | Splits
    val: CamVid | SyntheticScenes | None
    info: DatasetInfo
    frame_size: tuple[int, int]  # training frames' size before augmentation (= the model's input size)


def _check_multiple(name: str, hw: tuple[int, int], stride: int = OUTPUT_STRIDE) -> None:
    """Training crops are multiples of the model's output stride (8; 16 behind a stride-2 stem)."""
    if hw[0] % stride or hw[1] % stride:
        raise DatasetError(f"{name} {hw[0]}x{hw[1]}: H and W must be multiples of {stride}, the model's output "
                           f"stride (e.g. {hw[0] // stride * stride}x{hw[1] // stride * stride})")


class Splits(torch.utils.data.Dataset):
    """Several CamVid splits trained as one (``--train-splits train,val``): indices run through them in order;
    each split keeps its own augmentation seed, so no two frames share a random stream."""

    def __init__(self, parts: list[CamVid]) -> None:
        self.parts = parts
        self.info = parts[0].info
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.samples = [sample for p in parts for sample in p.samples]  # (image, label) paths, as CamVid's
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index: int) -> tuple[CamVid, int]:
        k = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.parts[k], index - int(self.offsets[k])

    @property
    def transform(self):
        return self.parts[0].transform

    @transform.setter
    def transform(self, value) -> None:
        for p in self.parts:
            p.transform = value

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for p in self.parts:
            p.set_epoch(epoch)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        part, i = self._locate(index)
        return part.load(i)

    def name(self, index: int) -> str:
        part, i = self._locate(index)
        return f"{part.split}/{Path(part.samples[i][0]).name}"

    def __getitem__(self, index: int):
        part, i = self._locate(index)
        return part[i]


def parse_splits(text: str) -> tuple[str, ...]:
    splits = tuple(s.strip() for s in text.split(",") if s.strip())
    if not splits or len(set(splits)) != len(splits):
        raise DatasetError(f"--train-splits '{text}': expected distinct split names, e.g. train or train,val")
    return splits


def build_data(data: str, crop: tuple[int, int], size: tuple[int, int] | None, seed: int,
               train_split: str = "train", val_split: str | None = "val", limit: int | None = None,
               synthetic_count: tuple[int, int] = (SYNTHETIC_TRAIN, SYNTHETIC_VAL),
               scale: tuple[float, float] = (0.75, 1.5), jitter: float = 0.2, label_full_res: bool = False,
               stride: int = OUTPUT_STRIDE) -> RunData:
    """Datasets with the training transform; frames decoded once and cached in memory. ``train_split`` may
    list several splits (``train,val``); the validation split must not be one of them."""
    _check_multiple("--crop", crop, stride)
    if not 0 < scale[0] <= scale[1]:
        raise DatasetError(f"--scale-range {scale[0]},{scale[1]}: expected 0 < MIN <= MAX, e.g. 0.5,2.0")
    if not 0 <= jitter < 1:
        raise DatasetError(f"--jitter {jitter}: expected a strength in [0, 1), e.g. 0.4")
    splits = parse_splits(train_split)
    if val_split and val_split in splits:
        raise DatasetError(f"--val-split {val_split} is one of --train-splits {train_split}: its score would be a "
                           "training score; pass --val-split '' (ship the last epoch) or train on other splits")
    if data == SYNTHETIC:
        if splits != ("train",):
            raise DatasetError(f"--train-splits {train_split}: synthetic data has one training split ('train')")
        frame = size or SYNTHETIC_SIZE
        n_train, n_val = synthetic_count
        train = SyntheticScenes(n_train if limit is None else min(limit, n_train), size=frame, seed=seed)
        val = SyntheticScenes(n_val, size=frame, seed=seed + SYNTHETIC_VAL_SEED_OFFSET) if val_split else None
        info = train.info
    else:
        parts = [CamVid(data, split, cache=True, seed=seed + 7919 * k, limit=limit) for k, split in enumerate(splits)]
        train = parts[0] if len(parts) == 1 else Splits(parts)
        val = CamVid(data, val_split, cache=True) if val_split else None
        info = train.info
        frame = size or train.load(0)[0].shape[:2]
    ratio = _label_ratio(train.load(0)[1].shape, frame) if label_full_res else 1
    train.transform = TrainTransform(crop, info.mean, info.std, info.ignore_index, base_size=size, scale=scale,
                                     jitter=jitter, label_ratio=ratio)
    return RunData(train, val, info, (int(frame[0]), int(frame[1])))


def _label_ratio(label_hw: tuple[int, ...], frame: tuple[int, int]) -> int:
    """How many times the label's resolution the frames are trained at (``--label-res full``): an integer."""
    r = label_hw[0] // frame[0]
    if r < 1 or label_hw[0] != r * frame[0] or label_hw[1] != r * frame[1]:
        raise DatasetError(f"--label-res full: labels {label_hw[0]}x{label_hw[1]} are not an integer multiple of "
                           f"the training size {frame[0]}x{frame[1]}; pick --size as labels / 2 (e.g. 180x240)")
    return r


def training_label_counts(dataset: CamVid | SyntheticScenes, num_classes: int, ignore_index: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Class pixel counts over the un-augmented training labels (decodes, and so caches, every frame)."""
    from .losses import class_pixel_counts

    return class_pixel_counts((dataset.load(i)[1] for i in range(len(dataset))), num_classes, ignore_index)
