"""The dataset contract every split loop reads (``SegDataset``): CamVid, the synthetic scenes, a clip's frames.

Written down as a protocol, so ``evaluate``, ``compare`` and the demo state what they need (a length,
``load(i)``, the label space, a frame's name) instead of taking ``object`` and probing it with getattr.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from toolkit.core.dataset_info import DatasetInfo
from toolkit.errors import InvalidValueError


@runtime_checkable
class SegDataset(Protocol):
    """Frames with labels: ``load(i)`` gives (H x W x 3 uint8 RGB image, H x W class ids) for i < len(dataset);
    ``info`` is the label space (class names, palette, ignore index, normalisation; None for a clip that has
    none of its own, which then takes the reference model's); ``name(i)`` names frame i
    in reports (its file name where there is one)."""

    @property
    def info(self) -> DatasetInfo | None: ...

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]: ...

    def name(self, index: int) -> str: ...


class FrameSet:
    """A few (image, label) frames held in memory as a SegDataset (the demo's sample clip)."""

    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray], info: DatasetInfo) -> None:
        if len(images) != len(labels):
            raise InvalidValueError(f"{len(images)} images and {len(labels)} labels: one label per image")
        self.images, self.labels, self._info = images, labels, info

    @property
    def info(self) -> DatasetInfo:
        return self._info

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index]

    def name(self, index: int) -> str:
        return f"frame {index}"
