"""Calibration data (real images through the model's own preprocessing) and the calibration cache.

``--calib-data DIR`` is either a CamVid-layout folder (classes.json + ``<split>.txt``; the split's
images are used) or any folder of images. The cache file name is a hash of everything the ranges
depend on: the model bytes, the image list (names, sizes, mtimes), the method and its settings, so
a repeated run skips calibration and any change recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from toolkit.core.names import INPUT_NAME, OUTPUT_STRIDE
from toolkit.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CALIB_METHODS = ("minmax", "entropy", "percentile")


def default_cache_dir() -> Path:
    return Path(os.environ.get("TOOLKIT_CACHE", Path.home() / ".cache" / "segnet-toolkit")) / "calibration"


def calibration_images(data: str | Path, split: str = "train", size: int | None = None) -> list[Path]:
    """The images to calibrate on, ``size`` of them spread evenly over the folder or split."""
    root = Path(data)
    if not root.is_dir():
        raise DatasetError(f"{root}: calibration folder not found")
    if (root / "classes.json").is_file():
        list_file = root / f"{split}.txt"
        if not list_file.is_file():
            splits = sorted(p.stem for p in root.glob("*.txt"))
            raise DatasetError(f"{list_file}: split '{split}' not found; available: {', '.join(splits) or 'none'}")
        paths = [root / line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    else:
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise DatasetError(f"{root}: no calibration images (expected {', '.join(IMAGE_SUFFIXES)} files or a "
                           "CamVid-layout folder with a split list)")
    if size is not None:
        if size < 1:
            raise DatasetError(f"--calib-size {size}: must be at least 1")
        if size < len(paths):
            paths = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, size).round()]
    return paths


def fingerprint(paths: Sequence[Path]) -> str:
    """Hash of the image list: names, sizes and modification times (cheap; content changes move mtime)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            raise DatasetError(f"{p}: calibration image not found") from None
        h.update(f"{p.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_key(model_sha: str, data_fp: str, settings: dict) -> str:
    blob = json.dumps({"model": model_sha, "data": data_fp, **settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class ImageFeeds:
    """Model inputs for calibration: each image resized/normalised exactly as toolkit eval does it."""

    def __init__(self, paths: Sequence[Path], mean: Sequence[float], std: Sequence[float],
                 input_size: tuple[int, int] | None, input_name: str = INPUT_NAME,
                 dtype: type = np.float32, stride: int = OUTPUT_STRIDE) -> None:
        self.paths, self.mean, self.std, self.input_size = list(paths), mean, std, input_size
        self.stride = stride  # the model's output stride: frames are padded to multiples of it
        self.input_name, self.dtype = input_name, dtype

    def __len__(self) -> int:
        return len(self.paths)

    def feed(self, i: int) -> dict[str, np.ndarray]:
        from toolkit.data.camvid import read_image_rgb
        from toolkit.evaluate import preprocess

        pre = preprocess(read_image_rgb(self.paths[i]), self.mean, self.std, self.input_size, self.stride)
        return {self.input_name: pre.tensor.astype(self.dtype)}

    def chunks(self, n: int, on_image: Callable[[], None] | None = None) -> Iterator[ChunkReader]:
        """Readers over consecutive chunks of ``n`` images (bounds the calibrator's memory); ``on_image`` is
        called once per image handed to the calibrator (a progress bar: calibration can take minutes)."""
        for start in range(0, len(self.paths), n):
            yield ChunkReader(self, range(start, min(start + n, len(self.paths))), on_image)


class ChunkReader:
    """onnxruntime.quantization.CalibrationDataReader protocol over some images of an ImageFeeds."""

    def __init__(self, feeds: ImageFeeds, indices: range, on_image: Callable[[], None] | None = None) -> None:
        self.feeds, self._it, self.on_image = feeds, iter(indices), on_image

    def get_next(self) -> dict[str, np.ndarray] | None:
        i = next(self._it, None)
        if i is None:
            return None
        feed = self.feeds.feed(i)
        if self.on_image is not None:
            self.on_image()
        return feed
