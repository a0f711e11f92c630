"""The dataset contract (toolkit.core.dataset.SegDataset): what evaluate, the Comparator and the demo read.

Held twice: ``contract_holders`` below is type-checked by tests/test_strict_types.py (mypy compares every
signature of the protocol, which ``isinstance`` cannot), and the tests here check the runtime protocol and
what ``load``/``name``/``info`` give back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toolkit.core.dataset import FrameSet, SegDataset
from toolkit.data import CamVid, SyntheticScenes, synthetic_info


def contract_holders(camvid: CamVid, scenes: SyntheticScenes, frames: FrameSet) -> list[SegDataset]:
    """Static check only: mypy rejects this if one of them stops being a SegDataset."""
    return [camvid, scenes, frames]


def _frames() -> FrameSet:
    image, label = np.zeros((8, 16, 3), np.uint8), np.ones((8, 16), np.uint8)
    return FrameSet([image, image], [label, label], synthetic_info())


def test_each_dataset_is_a_segdataset(synthetic_dir: Path) -> None:
    for ds in (CamVid(synthetic_dir, "val"), SyntheticScenes(3, size=(16, 24)), _frames()):
        assert isinstance(ds, SegDataset), type(ds).__name__
        image, label = ds.load(len(ds) - 1)
        assert image.dtype == np.uint8 and image.shape == (*label.shape, 3)
        info = ds.info
        assert info is not None and set(np.unique(label)) <= {*range(info.num_classes), info.ignore_index}
        assert isinstance(ds.name(0), str) and ds.name(0) != ds.name(1)


def test_the_video_clip_is_one_without_a_label_space(synthetic_dir: Path) -> None:
    from toolkit.video.clip import VideoClip

    clip = VideoClip(str(synthetic_dir / "val"))
    assert isinstance(clip, SegDataset) and clip.info is None and len(clip) == 4
    image, _ = clip.load(0)
    assert image.shape == (64, 96, 3) and clip.name(0) != clip.name(1)


def test_an_object_without_names_is_not_one() -> None:
    class Frames:
        info = None

        def __len__(self) -> int:
            return 1

        def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            return np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1), np.uint8)

    assert not isinstance(Frames(), SegDataset)


def test_frame_set_wants_one_label_per_image() -> None:
    with pytest.raises(ValueError, match="2 images and 1 labels"):
        FrameSet([np.zeros((2, 2, 3), np.uint8)] * 2, [np.zeros((2, 2), np.uint8)], synthetic_info())
