"""A short sample clip for demos and benchmarks, made on the spot (nothing is downloaded or shipped).

With CamVid at hand, the clip is the start of its val sequence (0016E5, consecutive frames at 15 Hz)
with the ground-truth labels, so parity can be measured as real mIoU. Without it, a procedural street
scene from ``toolkit.data.make_scene`` pans past the camera: exact labels too, but in the synthetic
label space, so for a CamVid model the demo measures agreement with the fp32 reference instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toolkit.core import defaults
from toolkit.data import make_scene
from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)


@dataclass
class SampleClip:
    """The written clip and where its frames and labels came from."""

    path: Path
    frames: int
    size: tuple[int, int]  # H, W
    fps: float
    origin: str  # "camvid val" or "synthetic"
    labels: list[np.ndarray] | None = None  # per-frame labels when the origin has them (both do)
    images: list[np.ndarray] | None = None  # the RGB frames as written (before video compression)


def find_camvid(explicit: str | Path | None = None) -> Path | None:
    """An explicit folder, else $TOOLKIT_CAMVID, else ../shared/camvid beside the working directory."""
    candidates = [explicit] if explicit else [os.environ.get("TOOLKIT_CAMVID"), Path.cwd().parent / "shared" / "camvid"]
    for c in candidates:
        if c and (Path(c) / "classes.json").is_file() and (Path(c) / "val.txt").is_file():
            return Path(c)
    if explicit:
        raise ToolkitError(f"--data {explicit}: no CamVid layout there (classes.json and val.txt expected)")
    return None


def panning_scene(frames: int, size: tuple[int, int] = defaults.INPUT_SIZE, num_classes: int = 6, seed: int = 0
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB, label) frames of a camera panning across a wide procedural street scene."""
    h, w = size
    wide_w = w * 2
    image, label = make_scene(seed, (h, wide_w), num_classes=num_classes, seed=seed)
    step = (wide_w - w) / max(frames - 1, 1)
    for i in range(frames):
        x = round(i * step)
        yield np.ascontiguousarray(image[:, x:x + w]), np.ascontiguousarray(label[:, x:x + w])


def camvid_frames(root: Path, frames: int, size: tuple[int, int] | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The first ``frames`` frames of CamVid's val list (one sequence, in order) with their labels."""
    from toolkit.data import CamVid

    ds = CamVid(root, "val")
    for i in range(min(frames, len(ds))):
        image, label = ds.load(i)
        if size is not None and image.shape[:2] != tuple(size):
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            label = cv2.resize(label, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        yield image, label


def make_sample_clip(path: str | Path, frames: int = 60, size: tuple[int, int] = defaults.INPUT_SIZE,
                     camvid: str | Path | None = None, use_camvid: bool = True, fps: float | None = None,
                     keep_frames: bool = True, num_classes: int = 6) -> SampleClip:
    """Write the sample clip (mp4, written to a temp name and renamed) and return what it holds."""
    from toolkit.files import atomic_write

    root = find_camvid(camvid) if use_camvid else None
    if root is not None:
        pairs, origin, fps = list(camvid_frames(root, frames, size)), "camvid val", fps or 15.0
    else:
        pairs, origin, fps = list(panning_scene(frames, size, num_classes)), "synthetic", fps or 15.0
    if not pairs:
        raise ToolkitError(f"no frames for the sample clip from {origin}")
    h, w = pairs[0][0].shape[:2]

    def write(tmp: Path) -> None:
        from toolkit.video.sinks import check_video

        mp4 = tmp.with_suffix(".mp4")  # OpenCV picks the container from the suffix
        try:
            writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise ToolkitError(f"cannot write {path}: OpenCV has no mp4v encoder")
            for image, _ in pairs:
                writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            writer.release()
            check_video(mp4, len(pairs), Path(path))  # VideoWriter does not report a full disk
            os.replace(mp4, tmp)
        finally:
            mp4.unlink(missing_ok=True)

    atomic_write(path, write)
    log.debug("sample clip %s: %d frames of %s at %dx%d", path, len(pairs), origin, w, h)
    return SampleClip(Path(path), len(pairs), (h, w), fps, origin,
                      labels=[lb for _, lb in pairs] if keep_frames else None,
                      images=[im for im, _ in pairs] if keep_frames else None)
