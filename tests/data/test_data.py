"""CamVid reader (on synthetic folders and, when present, the real one), transforms, synthetic scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from toolkit.core.dataset_info import load_classes_json
from toolkit.data import CamVid, EvalTransform, SyntheticScenes, TrainTransform, make_scene, normalize
from toolkit.errors import DatasetError


def test_synthetic_is_seeded_and_labelled() -> None:
    a, la = make_scene(3, (48, 64), seed=1)
    b, lb = make_scene(3, (48, 64), seed=1)
    c, _ = make_scene(4, (48, 64), seed=1)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and not np.array_equal(a, c)
    assert a.shape == (48, 64, 3) and a.dtype == np.uint8 and la.shape == (48, 64)
    assert set(np.unique(la)) <= {0, 1, 2, 3, 4, 5, 255}
    assert {0, 1} <= set(np.unique(la))


def test_camvid_reader_on_synthetic_folder(synthetic_dir: Path) -> None:
    ds = CamVid(synthetic_dir, "val")
    assert len(ds) == 4 and ds.info.num_classes == 6 and ds.info.ignore_index == 255
    image, label = ds[0]
    assert image.shape == (64, 96, 3) and label.shape == (64, 96)
    ref_img, ref_lab = SyntheticScenes(size=(64, 96)).load(8)  # val follows the 8 train samples
    assert np.array_equal(image.numpy(), ref_img) and np.array_equal(label.numpy(), ref_lab)


def test_camvid_errors(synthetic_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="split 'test' not found; available: train, val"):
        CamVid(synthetic_dir, "test")
    with pytest.raises(DatasetError, match="dataset folder not found"):
        CamVid(tmp_path / "nope")
    (tmp_path / "classes.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a valid classes.json"):
        CamVid(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "classes.json").write_text((synthetic_dir / "classes.json").read_text())
    (broken / "train.txt").write_text("a.png b.png\n")
    with pytest.raises(DatasetError, match="image not found"):
        CamVid(broken)[0]
    (broken / "a.png").write_bytes(b"garbage")
    (broken / "b.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a readable image"):
        CamVid(broken)[0]


def test_train_transform_reproducible(synthetic_dir: Path) -> None:
    info = load_classes_json(synthetic_dir / "classes.json")
    tf = TrainTransform((32, 48), info.mean, info.std, info.ignore_index)
    ds = CamVid(synthetic_dir, "train", transform=tf, seed=7)
    x1, y1 = ds[2]
    x2, y2 = ds[2]
    ds.set_epoch(1)
    x3, _ = ds[2]
    assert x1.shape == (3, 32, 48) and y1.shape == (32, 48) and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)


def test_crop_larger_than_image_pads_with_ignore() -> None:
    image = np.full((8, 8, 3), 100, np.uint8)
    label = np.zeros((8, 8), np.uint8)
    tf = TrainTransform((16, 16), (0.5,) * 3, (0.25,) * 3, 255, scale=(1.0, 1.0), flip=False, jitter=0)
    _, y = tf(image, label, np.random.default_rng(0))
    assert (y == 255).sum() == 16 * 16 - 64


def test_normalize_and_eval_transform() -> None:
    img = np.full((4, 4, 3), 255, np.uint8)
    out = normalize(img, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert out.shape == (3, 4, 4) and np.allclose(out, 1.0)
    x, y = EvalTransform((0.5,) * 3, (0.5,) * 3, size=(2, 2))(img, np.zeros((4, 4), np.uint8))
    assert x.shape == (3, 2, 2) and y.shape == (4, 4)


@pytest.mark.camvid
def test_real_camvid(camvid_dir: Path) -> None:
    ds = CamVid(camvid_dir, "val")
    assert len(ds) == 101 and ds.info.num_classes == 11 and ds.info.ignore_index == 11
    assert ds.info.class_names[0] == "Sky"
    image, label = ds[0]
    assert image.shape == (360, 480, 3) and label.shape == (360, 480) and int(label.max()) <= 11
