"""Calibration images, the cache key's inputs and the calibrator's feeds, on a few 8x8 PNGs (milliseconds; the
mutation map's tests for toolkit/quant/calibration.py, with test_int8_units.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import quant_graphs as tg
from toolkit.core.names import INPUT_NAME, OUTPUT_STRIDE
from toolkit.data.camvid import read_image_rgb
from toolkit.errors import DatasetError
from toolkit.evaluate import preprocess
from toolkit.quant.calibration import (
    IMAGE_SUFFIXES,
    ImageFeeds,
    cache_key,
    calibration_images,
    default_cache_dir,
    fingerprint,
)


def test_the_cache_folder_is_toolkit_cache_or_the_users_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "calibration"
    monkeypatch.delenv("TOOLKIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "segnet-toolkit" / "calibration"


def _camvid(root: Path) -> Path:
    root.mkdir()
    (root / "classes.json").write_text("{}")
    tg.images(root / "images", 4)
    # the list's order, not sorted; extra columns (the label) and blank lines ignored
    (root / "train.txt").write_text("images/2.png labels/2.png\n\nimages/0.png labels/0.png\n   \nimages/3.png\n")
    (root / "val.txt").write_text("images/1.png labels/1.png\n")
    return root


def test_a_camvid_folder_gives_its_splits_list(tmp_path: Path) -> None:
    root = _camvid(tmp_path / "cv")
    assert calibration_images(root) == [root / "images" / n for n in ("2.png", "0.png", "3.png")]  # train
    assert calibration_images(root, "val") == [root / "images" / "1.png"]
    with pytest.raises(DatasetError) as e:
        calibration_images(root, "tran")
    assert str(e.value) == f"{root / 'tran.txt'}: split 'tran' not found; available: train, val"
    (root / "train.txt").unlink()
    (root / "val.txt").unlink()
    with pytest.raises(DatasetError, match=r"split 'train' not found; available: none$"):
        calibration_images(root)


def test_a_plain_folder_gives_its_images_sorted_and_nested(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    tg.images(root / "b", 2)
    (root / "a.JPG").write_bytes((root / "b" / "0.png").read_bytes())  # the suffix in any case
    (root / "notes.txt").write_text("not an image")
    (root / "dir.png").mkdir()  # a folder named like an image is not one
    assert calibration_images(root) == [root / "a.JPG", root / "b" / "0.png", root / "b" / "1.png"]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as e:
        calibration_images(tmp_path / "missing")
    assert str(e.value) == f"{tmp_path / 'missing'}: calibration folder not found"
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="calibration folder not found"):
        calibration_images(tmp_path / "file.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as e:
        calibration_images(tmp_path / "empty")
    assert str(e.value) == (f"{tmp_path / 'empty'}: no calibration images (expected {', '.join(IMAGE_SUFFIXES)} "
                            "files or a CamVid-layout folder with a split list)")


def test_size_spreads_the_choice_evenly(tmp_path: Path) -> None:
    paths = tg.images(tmp_path / "ten", 10)
    folder = tmp_path / "ten"
    # indices linspace(0, 9, n) rounded half to even: 3 -> 0, 4 (4.5), 9; 4 -> 0, 3, 6, 9
    assert calibration_images(folder, size=3) == [paths[0], paths[4], paths[9]]
    assert calibration_images(folder, size=4) == [paths[0], paths[3], paths[6], paths[9]]
    assert calibration_images(folder, size=1) == [paths[0]]
    assert calibration_images(folder, size=10) == paths and calibration_images(folder, size=50) == paths
    assert calibration_images(folder) == paths
    for bad in (0, -2):
        with pytest.raises(DatasetError) as e:
            calibration_images(folder, size=bad)
        assert str(e.value) == f"--calib-size {bad}: must be at least 1"


def test_the_fingerprint_covers_names_sizes_times_and_order(tmp_path: Path) -> None:
    a, b = tg.images(tmp_path / "i", 2)
    base = fingerprint([a, b])
    assert len(base) == 64 and fingerprint([a, b]) == base
    assert fingerprint([b, a]) != base and fingerprint([a]) != base and fingerprint([]) != base
    renamed = a.with_name("z.png")
    a.rename(renamed)
    assert fingerprint([renamed, b]) != base
    renamed.rename(a)
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    moved = fingerprint([a, b])
    assert moved != base
    with open(a, "ab") as f:  # a size change, with the time put back
        f.write(b"\0")
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert fingerprint([a, b]) not in (base, moved)
    with pytest.raises(DatasetError) as e:
        fingerprint([a, tmp_path / "gone.png"])
    assert str(e.value) == f"{tmp_path / 'gone.png'}: calibration image not found" and e.value.__cause__ is None


def test_the_cache_key_hashes_every_input_in_any_key_order() -> None:
    key = cache_key("m", "d", {"method": "minmax", "images": 3})
    assert len(key) == 32 and int(key, 16) >= 0
    assert cache_key("m", "d", {"images": 3, "method": "minmax"}) == key
    assert key not in (cache_key("m2", "d", {"method": "minmax", "images": 3}),
                       cache_key("m", "d2", {"method": "minmax", "images": 3}),
                       cache_key("m", "d", {"method": "entropy", "images": 3}),
                       cache_key("m", "d", {"method": "minmax", "images": 4}))


def test_feeds_are_the_evaluation_preprocessing(tmp_path: Path) -> None:
    paths = tg.images(tmp_path / "i", 2, size=(10, 14))
    feeds = ImageFeeds(paths, tg.MEAN, tg.STD, None)
    assert len(feeds) == 2 and feeds.stride == OUTPUT_STRIDE and feeds.input_name == INPUT_NAME
    x = feeds.feed(1)
    want = preprocess(read_image_rgb(paths[1]), tg.MEAN, tg.STD, None, OUTPUT_STRIDE).tensor
    assert list(x) == [INPUT_NAME] and x[INPUT_NAME].dtype == np.float32 and np.array_equal(x[INPUT_NAME], want)
    custom = ImageFeeds(paths, (0.2, 0.3, 0.4), (0.5, 0.6, 0.7), (12, 20), input_name="x", dtype=np.float16,
                        stride=16)
    y = custom.feed(0)["x"]
    want = preprocess(read_image_rgb(paths[0]), (0.2, 0.3, 0.4), (0.5, 0.6, 0.7), (12, 20), 16).tensor
    assert y.dtype == np.float16 and y.shape == (1, 3, 16, 32) and np.array_equal(y, want.astype(np.float16))


def test_chunks_hand_out_every_image_once(tmp_path: Path) -> None:
    paths = tg.images(tmp_path / "i", 5)
    feeds = ImageFeeds(paths, tg.MEAN, tg.STD, None)
    calls: list[int] = []
    readers = list(feeds.chunks(2, lambda: calls.append(1)))
    got = []
    for r in readers:
        batch = []
        while (feed := r.get_next()) is not None:
            batch.append(feed[INPUT_NAME])
        got.append(batch)
        assert r.get_next() is None  # stays exhausted
    assert [len(b) for b in got] == [2, 2, 1] and len(calls) == 5
    flat = [x for b in got for x in b]
    assert all(np.array_equal(x, feeds.feed(i)[INPUT_NAME]) for i, x in enumerate(flat))
    quiet = next(iter(feeds.chunks(5)))  # no progress callback
    assert sum(1 for _ in iter(quiet.get_next, None)) == 5
