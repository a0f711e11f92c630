"""Where a candidate's segmentation moved, not only how much: a streaming accumulator the Comparator feeds.

Per candidate it keeps, over a whole split and in bounded memory:

- the transition matrix (rows: the reference's class, columns: the candidate's) over every pixel, which
  says which classes turn into which;
- how many changed pixels lie on the reference's class boundaries (within ``band_px`` pixels, a square
  window) against how many lie inside objects: changes on boundaries are expected from lower precision,
  changes inside objects point at a bug;
- a confusion matrix on the boundary band of the labels (a trimap), so the mIoU where precision matters
  most sits next to the full mIoU;
- the few frames with the lowest agreement, as a small heap (never all class maps).

The confusion-matrix difference against the reference needs nothing extra: it is the candidate's
label-vs-prediction matrix minus the reference's, both already kept by the Comparator.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from toolkit.core import defaults
from toolkit.errors import InvalidValueError
from toolkit.metrics import ConfusionMatrix

TOP_TRANSITIONS = 10


@dataclass(frozen=True)
class DriftOptions:
    """``band_px``: half-width of the boundary band in label pixels; ``worst_frames``: frames kept per candidate."""

    band_px: int = defaults.DRIFT_BAND_PX
    worst_frames: int = defaults.DRIFT_WORST_FRAMES

    def __post_init__(self) -> None:
        if self.band_px < 1 or self.worst_frames < 0:
            raise InvalidValueError(f"band_px={self.band_px} must be >= 1 and worst_frames={self.worst_frames} >= 0")


def boundary_band(class_map: np.ndarray, radius: int) -> np.ndarray:
    """Bool map of the pixels within ``radius`` pixels (Chebyshev) of a class boundary.

    A pixel is in the band when its (2r+1) x (2r+1) window holds more than one value, so a straight
    boundary gets a band 2r pixels wide, r on each side; the image border is not a boundary."""
    if radius < 1:
        raise InvalidValueError(f"radius {radius}: expected >= 1")
    m = np.ascontiguousarray(class_map, dtype=np.uint8)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(m, kernel) != cv2.erode(m, kernel)


@dataclass
class WorstFrame:
    """One low-agreement frame with the maps the report draws (at label resolution)."""

    index: int
    name: str
    agreement: float  # percent of pixels whose class equals the reference's
    changed: int
    changed_on_boundary: int
    image: np.ndarray = field(repr=False)  # RGB uint8
    reference: np.ndarray = field(repr=False)  # class map, uint8
    candidate: np.ndarray = field(repr=False)  # class map, uint8

    def summary(self) -> dict:
        return {"index": self.index, "name": self.name, "agreement": self.agreement, "changed_pixels": self.changed,
                "boundary_share": _share(self.changed_on_boundary, self.changed)}


class WorstFrames:
    """The ``keep`` frames of lowest agreement seen so far (ties: the earlier frame), as a bounded heap.

    The heap's root is the best frame kept, the one a worse newcomer evicts; ``make`` builds a frame's
    payload only when it enters, so frames that do not qualify cost no copies."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._heap: list[tuple[float, int, WorstFrame]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def offer(self, agreement: float, index: int, make: Callable[[], WorstFrame]) -> bool:
        """Keep the frame if it is among the ``keep`` worst; returns whether it was kept."""
        if self.keep == 0:
            return False
        key = (-agreement, -index)
        if len(self._heap) < self.keep:
            heapq.heappush(self._heap, (*key, make()))
            return True
        if key > self._heap[0][:2]:
            heapq.heapreplace(self._heap, (*key, make()))
            return True
        return False

    def frames(self) -> list[WorstFrame]:
        """Worst first."""
        return [f for *_, f in sorted(self._heap, key=lambda t: (-t[0], -t[1]))]


class CandidateDrift:
    """The running drift of one candidate against the reference."""

    def __init__(self, num_classes: int, ignore_index: int, options: DriftOptions) -> None:
        self.k, self.options = num_classes, options
        self.transitions = np.zeros((num_classes, num_classes), np.int64)
        self.band_cm = ConfusionMatrix(num_classes, ignore_index)
        self.pixels = self.changed = self.changed_on_boundary = self.boundary_pixels = 0
        self.worst = WorstFrames(options.worst_frames)

    def update(self, frame: FrameContext, pred: np.ndarray) -> None:
        k = self.k
        ref = frame.ref_pred
        self.transitions += np.bincount((ref.reshape(-1) * k + pred.reshape(-1)).astype(np.int64),
                                        minlength=k * k).reshape(k, k)
        changed = pred != ref
        n_changed = int(changed.sum())
        on_boundary = int((changed & frame.ref_band).sum())
        self.pixels += changed.size
        self.changed += n_changed
        self.changed_on_boundary += on_boundary
        self.boundary_pixels += frame.ref_band_pixels
        self.band_cm.update(pred[frame.label_band], frame.label[frame.label_band])
        agreement = 100.0 * (1 - n_changed / max(changed.size, 1))
        self.worst.offer(agreement, frame.index, lambda: WorstFrame(
            frame.index, frame.name, agreement, n_changed, on_boundary, frame.image.copy(),
            ref.astype(np.uint8), pred.astype(np.uint8)))

    def summary(self, cand_cm: ConfusionMatrix, ref_cm: ConfusionMatrix, ref_band_cm: ConfusionMatrix,
                names: Sequence[str]) -> dict:
        """JSON-ready numbers (percent and percentage points, as the rest of the parity report)."""
        band, ref_band = self.band_cm.scores(), ref_band_cm.scores()
        off = self.transitions.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(off, axis=None)[::-1][:TOP_TRANSITIONS]
        top = [{"from": names[i // self.k], "to": names[i % self.k], "pixels": int(off.flat[i]),
                "share_of_changed": _share(int(off.flat[i]), self.changed)} for i in order if off.flat[i] > 0]
        return {
            "band_px": self.options.band_px,
            "pixels": self.pixels,
            "changed_pixels": self.changed,
            "changed_on_boundary": self.changed_on_boundary,
            "boundary_share": _share(self.changed_on_boundary, self.changed),
            "band_area": _share(self.boundary_pixels, self.pixels),
            "miou_band": _pct(band.miou),
            "reference_miou_band": _pct(ref_band.miou),
            "delta_miou_band": _pct(band.miou - ref_band.miou),
            "band_label_pixels": band.num_pixels,
            "confusion_difference": (cand_cm.matrix - ref_cm.matrix).tolist(),
            "transitions": self.transitions.tolist(),
            "top_transitions": top,
            "worst_frames": [f.summary() for f in self.worst.frames()],
        }


@dataclass
class FrameContext:
    """What every candidate's update of one frame shares: the reference's map and both boundary bands."""

    index: int
    name: str
    image: np.ndarray
    label: np.ndarray
    ref_pred: np.ndarray
    ref_band: np.ndarray  # bool, the reference's class boundaries
    label_band: np.ndarray  # bool, the labels' class boundaries (the trimap)
    ref_band_pixels: int


class DriftAccumulator:
    """Feeds one frame at a time (``frame`` then ``add`` per candidate); memory does not grow with the split."""

    def __init__(self, num_classes: int, ignore_index: int, candidates: int,
                 options: DriftOptions | None = None) -> None:
        self.options = options or DriftOptions()
        self.ref_band_cm = ConfusionMatrix(num_classes, ignore_index)
        self.candidates = [CandidateDrift(num_classes, ignore_index, self.options) for _ in range(candidates)]
        self._frame: FrameContext | None = None

    def frame(self, index: int, name: str, image: np.ndarray, label: np.ndarray, ref_pred: np.ndarray) -> None:
        """Start a frame: the bands are computed once here for every candidate."""
        r = self.options.band_px
        ref_band = boundary_band(ref_pred, r)
        label_band = boundary_band(label, r)  # the ignore label counts as a region: edges next to void are boundaries
        self.ref_band_cm.update(ref_pred[label_band], label[label_band])
        self._frame = FrameContext(index, name, image, label, ref_pred, ref_band, label_band, int(ref_band.sum()))

    def add(self, candidate: int, pred: np.ndarray) -> None:
        assert self._frame is not None, "frame() must be called before add()"
        self.candidates[candidate].update(self._frame, pred)

    def summaries(self, cand_cms: Sequence[ConfusionMatrix], ref_cm: ConfusionMatrix,
                  names: Sequence[str]) -> list[dict]:
        return [d.summary(cm, ref_cm, self.ref_band_cm, names) for d, cm in zip(self.candidates, cand_cms, strict=True)]

    def worst_frames(self) -> list[list[WorstFrame]]:
        return [d.worst.frames() for d in self.candidates]


def _share(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _pct(v: float) -> float | None:
    return None if np.isnan(v) else float(100 * v)
