"""A clip for ``toolkit parity --video``: frames in order from a video file, an image sequence (glob) or a folder
of frames sorted by name, with optional per-frame labels, behind the ``load(i)``/``__len__`` a Comparator reads.

Frames are read once, in order (the Comparator visits them so), so a long video is never held in memory.
Labels are matched by file stem (``frames/0016E5_07959.png`` -> ``labels/0016E5_07959.png``); a CamVid-layout
folder (``val/`` beside ``valannot/``) finds its labels without being told. A frame without a label is scored
by nothing but the temporal and agreement figures (its label is all ``ignore_index``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.errors import DatasetError
from toolkit.video.sources import FrameSource, ImageSource, UnreadableFrame, open_source


def camvid_labels_beside(src: str | Path) -> Path | None:
    """``<folder>annot`` beside a frame folder (CamVid's layout), if it exists."""
    p = Path(str(src).rstrip("/"))
    cand = p.with_name(p.name + "annot")
    return cand if p.is_dir() and cand.is_dir() else None


class VideoClip:
    """Consecutive frames of one source; ``labelled`` counts the frames that found a label."""

    def __init__(self, src: str, labels: str | Path | None = None, limit: int | None = None,
                 ignore_index: int = 255) -> None:
        self.spec, self.ignore_index = src, ignore_index
        self.labels_dir = Path(labels) if labels is not None else None
        if self.labels_dir is not None and not self.labels_dir.is_dir():
            raise DatasetError(f"--labels {labels}: not a folder; expected a folder of label PNGs named like the "
                               "frames")
        self.source: FrameSource = open_source(src, retries=0)
        if self.source.live:
            self.source.close()
            raise DatasetError(f"--video {src}: a live source has no fixed frames to compare models on; record "
                               "a clip first (a file or a folder of frames)")
        count = self.source.frame_count
        if count is None or count <= 0:
            raise DatasetError(f"--video {src}: the frame count is unknown; convert it to a folder of frames")
        self.count = min(count, limit) if limit is not None else count
        self.labelled = 0
        self._next = 0
        self.samples = [(self._name(i), None) for i in range(self.count)]  # frame names, as CamVid lists them

    def _name(self, i: int) -> str:
        return self.source.frame_name(i) or f"frame {i}"

    info = None  # no label space of its own: the comparator uses the reference's (SegDataset.info)

    def name(self, i: int) -> str:
        return self._name(i)

    def __len__(self) -> int:
        return self.count

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index != self._next:
            raise DatasetError(f"clip frames are read in order: asked for {index}, next is {self._next}")
        try:
            image = self.source.read()
        except UnreadableFrame as e:
            raise DatasetError(f"--video {self.spec}: frame {index} is unreadable ({e}); a gap would break the "
                               "consecutive pairs the flip rate compares") from e
        if image is None:
            raise DatasetError(f"--video {self.spec}: ended at frame {index}, its header said {self.count}")
        self._next += 1
        if self._next == self.count:
            self.source.close()
        return image, self._label(index, image.shape[:2])

    def _label(self, index: int, hw: tuple[int, int]) -> np.ndarray:
        from toolkit.data.camvid import read_label

        if self.labels_dir is not None and isinstance(self.source, ImageSource):
            path = self.labels_dir / (Path(self.source.paths[index]).stem + ".png")
            if path.is_file():
                label = read_label(path)
                if label.shape != hw:
                    raise DatasetError(f"{path}: label is {label.shape[1]}x{label.shape[0]}, its frame "
                                       f"{hw[1]}x{hw[0]}; labels must have the frames' size")
                self.labelled += 1
                return label
        return np.full(hw, self.ignore_index, np.uint8)
