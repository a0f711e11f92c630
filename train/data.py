"""Training/validation datasets for a run: a CamVid-layout folder, or ``synthetic`` scenes (no download)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.data import CamVid, DatasetInfo, SyntheticScenes, TrainTransform
from toolkit.data.synthetic import SYNTHETIC_SIZE, SYNTHETIC_TRAIN, SYNTHETIC_VAL, SYNTHETIC_VAL_SEED_OFFSET
from toolkit.errors import DatasetError

SYNTHETIC = "synthetic"


@dataclass
class RunData:
    train: CamVid | SyntheticScenes
    val: CamVid | SyntheticScenes | None
    info: DatasetInfo
    frame_size: tuple[int, int]  # training frames' size before augmentation (= the model's input size)


def _check_multiple_of_8(name: str, hw: tuple[int, int]) -> None:
    if hw[0] % 8 or hw[1] % 8:
        raise DatasetError(f"{name} {hw[0]}x{hw[1]}: H and W must be multiples of 8 (e.g. "
                           f"{hw[0] // 8 * 8}x{hw[1] // 8 * 8})")


def build_data(data: str, crop: tuple[int, int], size: tuple[int, int] | None, seed: int,
               train_split: str = "train", val_split: str | None = "val", limit: int | None = None,
               synthetic_count: tuple[int, int] = (SYNTHETIC_TRAIN, SYNTHETIC_VAL)) -> RunData:
    """Datasets with the training transform; frames decoded once and cached in memory."""
    _check_multiple_of_8("crop", crop)
    if data == SYNTHETIC:
        frame = size or SYNTHETIC_SIZE
        n_train, n_val = synthetic_count
        train = SyntheticScenes(n_train if limit is None else min(limit, n_train), size=frame, seed=seed)
        val = SyntheticScenes(n_val, size=frame, seed=seed + SYNTHETIC_VAL_SEED_OFFSET) if val_split else None
        info = train.info
    else:
        train = CamVid(data, train_split, cache=True, seed=seed, limit=limit)
        val = CamVid(data, val_split, cache=True) if val_split else None
        info = train.info
        frame = size or train.load(0)[0].shape[:2]
    train.transform = TrainTransform(crop, info.mean, info.std, info.ignore_index, base_size=size)
    return RunData(train, val, info, (int(frame[0]), int(frame[1])))


def training_label_counts(dataset: CamVid | SyntheticScenes, num_classes: int, ignore_index: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Class pixel counts over the un-augmented training labels (decodes, and so caches, every frame)."""
    from .losses import class_pixel_counts

    return class_pixel_counts((dataset.load(i)[1] for i in range(len(dataset))), num_classes, ignore_index)
