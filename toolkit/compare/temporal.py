"""Temporal drift: how much a model's class maps flicker over a clip, and how much more than the reference's.

The **flip rate** of a pair of consecutive frames is the share of pixels whose class changes between them;
over a clip it is the flips of every pair over the pixels of every pair (percent). A scene that does not move
gives 0. A candidate that keeps the reference's mIoU can still flicker: its **excess** is its flip rate minus
the reference's on the same frames (percentage points), the flicker the lower precision added.

Both are split into a **boundary** band (within ``band_px`` pixels of a class boundary of the reference's map
in either frame of the pair: the same pixels for every model) and the **interior** (every other pixel), each
rate over its own pixels. Flicker at boundaries is what a viewer of the overlay sees first; flips inside
objects mean whole regions changing class.

The raw rate counts motion too: in a moving clip a boundary that moves by d pixels flips about d pixels per
unit of boundary length, for every model alike. The **flow-compensated** rate first warps the previous
frame's class map onto the current frame with dense optical flow (OpenCV Farnebäck) computed on the two
*frames* themselves (not on any model's output, so every model is warped the same way), then counts the pixels
whose class differs from the warped map; pixels whose flow source lies outside the frame are left out. What
remains is flicker the scene's motion does not explain (up to the flow's own errors, which the reference's
compensated rate shows: both models see the same ones, so the excess cancels most of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from toolkit.compare.drift import boundary_band
from toolkit.metrics import ConfusionMatrix

# Farnebäck parameters (pyramid scale, levels, window, iterations, poly_n, poly_sigma, flags): OpenCV's
# documented example values with a 3-level pyramid, enough for the ~10 px per frame of a driving clip at 15 Hz.
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)
PARTS = ("", "boundary_", "interior_")  # all pixels, the boundary band, the rest


def dense_flow(current_rgb: np.ndarray, previous_rgb: np.ndarray) -> np.ndarray:
    """H x W x 2 float32 displacement from each pixel of ``current`` to where it was in ``previous``."""
    cur = cv2.cvtColor(np.ascontiguousarray(current_rgb), cv2.COLOR_RGB2GRAY)
    prev = cv2.cvtColor(np.ascontiguousarray(previous_rgb), cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(cur, prev, None, *FARNEBACK)


def warp_previous(previous_map: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous class map sampled where each current pixel came from (nearest), and the bool map of the
    pixels whose source lies inside the frame (the others are disoccluded: nothing to compare with)."""
    h, w = previous_map.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    valid = (mx > -0.5) & (mx < w - 0.5) & (my > -0.5) & (my < h - 0.5)
    warped = cv2.remap(np.ascontiguousarray(previous_map, dtype=np.uint8), mx, my, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return warped, valid


@dataclass
class PairContext:
    """What every model's update of one frame pair shares: the regions and the flow (computed once)."""

    index: int  # the pair's second frame
    boundary: np.ndarray  # bool: within band_px of a reference boundary in either frame
    flow: np.ndarray | None
    valid: np.ndarray | None  # bool: flow source inside the frame
    comp_boundary: np.ndarray | None  # the boundary band for the compensated rate (current + warped previous)


class _Counts:
    """Flips and pixels of one model per region, raw and flow-compensated."""

    def __init__(self) -> None:
        self.flips = dict.fromkeys(PARTS, 0)
        self.pixels = dict.fromkeys(PARTS, 0)
        self.comp_flips = dict.fromkeys(PARTS, 0)
        self.comp_pixels = dict.fromkeys(PARTS, 0)
        self.per_pair: list[float] = []
        self.comp_per_pair: list[float] = []

    def add(self, flips: np.ndarray, band: np.ndarray, comp: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        for part, region in zip(PARTS, (None, band, ~band), strict=True):
            self.flips[part] += int(flips.sum() if region is None else (flips & region).sum())
            self.pixels[part] += int(flips.size if region is None else region.sum())
        self.per_pair.append(100.0 * float(flips.mean()))
        if comp is None:
            return
        cflips, valid, cband = comp
        for part, region in zip(PARTS, (valid, valid & cband, valid & ~cband), strict=True):
            self.comp_flips[part] += int((cflips & region).sum())
            self.comp_pixels[part] += int(region.sum())
        self.comp_per_pair.append(_rate(int((cflips & valid).sum()), int(valid.sum())) or 0.0)

    def rates(self) -> dict[str, float | None]:
        out = {f"{p}flip_rate": _rate(self.flips[p], self.pixels[p]) for p in PARTS}
        out |= {f"compensated_{p}flip_rate": _rate(self.comp_flips[p], self.comp_pixels[p]) for p in PARTS}
        return out


@dataclass
class FlickerPair:
    """The pair of frames where a candidate flickered most beyond the reference, with what the report draws."""

    index: int  # the second frame of the pair
    names: tuple[str, str]
    excess: float  # percentage points, this pair only
    images: tuple[np.ndarray, np.ndarray] = field(repr=False)
    reference: tuple[np.ndarray, np.ndarray] = field(repr=False)
    candidate: tuple[np.ndarray, np.ndarray] = field(repr=False)

    def summary(self) -> dict:
        return {"index": self.index, "frames": list(self.names), "excess_flip_rate": self.excess}


class TemporalAccumulator:
    """Fed one frame at a time in clip order (``frame(index, name, image, label, maps)``, reference first);
    keeps only the previous frame, per-pair rates and one drawn pair per candidate, so memory does not grow
    with the clip beyond a few floats per frame.

    ``flow=False`` skips the compensated rates (``toolkit infer`` counts raw flips only: no flow in a
    real-time loop). ``ignore_index``: labels of that value are left out of the per-frame mIoU."""

    def __init__(self, num_classes: int, ignore_index: int | None, candidates: int, band_px: int = 3,
                 flow: bool = True) -> None:
        self.k, self.ignore, self.band_px, self.use_flow = num_classes, ignore_index, band_px, flow
        self.counts = [_Counts() for _ in range(candidates + 1)]
        self.miou: list[list[float | None]] = [[] for _ in range(candidates + 1)]
        self.pairs: list[FlickerPair | None] = [None] * candidates
        self.pair_indices: list[int] = []
        self.frames = 0
        self._prev: tuple[int, str, np.ndarray, list[np.ndarray]] | None = None

    def frame(self, index: int, name: str, image: np.ndarray, label: np.ndarray | None,
              maps: Sequence[np.ndarray]) -> None:
        maps = [np.asarray(m, np.uint8) for m in maps]
        if len(maps) != len(self.counts):
            raise ValueError(f"{len(maps)} class maps, expected {len(self.counts)} (reference first)")
        self.frames += 1
        has_label = label is not None and (self.ignore is None or bool((label != self.ignore).any()))
        for i, m in enumerate(maps):
            self.miou[i].append(_frame_miou(m, label, self.k, self.ignore) if has_label else None)
        if self._prev is not None:
            self._pair(index, name, image, maps)
        self._prev = (index, name, image, maps)

    def _pair(self, index: int, name: str, image: np.ndarray, maps: list[np.ndarray]) -> None:
        assert self._prev is not None
        _, prev_name, prev_image, prev_maps = self._prev
        ref, prev_ref = maps[0], prev_maps[0]
        band = boundary_band(ref, self.band_px) | boundary_band(prev_ref, self.band_px)
        ctx = PairContext(index, band, None, None, None)
        if self.use_flow:
            ctx.flow = dense_flow(image, prev_image)
            warped_ref, ctx.valid = warp_previous(prev_ref, ctx.flow)
            ctx.comp_boundary = boundary_band(ref, self.band_px) | boundary_band(warped_ref, self.band_px)
        self.pair_indices.append(index)
        for i, (m, pm) in enumerate(zip(maps, prev_maps, strict=True)):
            comp = None
            if ctx.flow is not None:
                warped, _ = warp_previous(pm, ctx.flow)
                comp = (warped != m, ctx.valid, ctx.comp_boundary)
            self.counts[i].add(m != pm, band, comp)
        ref_rate = self.counts[0].per_pair[-1]
        for c in range(len(self.pairs)):
            excess = self.counts[c + 1].per_pair[-1] - ref_rate
            best = self.pairs[c]
            if excess > 0 and (best is None or excess > best.excess):
                self.pairs[c] = FlickerPair(index, (prev_name, name), excess, (prev_image.copy(), image.copy()),
                                            (prev_ref, ref), (prev_maps[c + 1], maps[c + 1]))

    def summaries(self) -> list[dict]:
        """One ``temporal`` dict per candidate (JSON-ready; rates in percent, excesses in points)."""
        ref = self.counts[0].rates()
        out = []
        for c in range(len(self.pairs)):
            counts = self.counts[c + 1]
            own = counts.rates()
            d: dict = {"frames": self.frames, "pairs": len(self.pair_indices), "band_px": self.band_px,
                       "flow": "farneback" if self.use_flow else None}
            for key, value in own.items():
                d[key] = value
                d["reference_" + key] = ref[key]
                d["excess_" + key] = None if value is None or ref[key] is None else value - ref[key]
            d["boundary_area"] = _rate(self.counts[0].pixels["boundary_"], self.counts[0].pixels[""])
            d["compensated_valid_share"] = _rate(self.counts[0].comp_pixels[""], self.counts[0].pixels[""]) \
                if self.use_flow else None
            d["per_pair"] = {"index": list(self.pair_indices), "flip_rate": counts.per_pair,
                             "reference_flip_rate": self.counts[0].per_pair,
                             "compensated_flip_rate": counts.comp_per_pair or None,
                             "reference_compensated_flip_rate": self.counts[0].comp_per_pair or None}
            labelled = any(v is not None for v in self.miou[0])
            d["per_frame_miou"] = self.miou[c + 1] if labelled else None
            d["reference_per_frame_miou"] = self.miou[0] if labelled else None
            pair = self.pairs[c]
            d["largest_excess_pair"] = pair.summary() if pair is not None else None
            out.append(d)
        return out

    def reference_summary(self) -> dict:
        """The reference's own rates (what ``toolkit infer`` reports for its one model)."""
        d: dict = {"frames": self.frames, "pairs": len(self.pair_indices), "band_px": self.band_px}
        d |= {k: v for k, v in self.counts[0].rates().items() if self.use_flow or not k.startswith("compensated_")}
        return d

    def flicker_pairs(self) -> list[FlickerPair | None]:
        return list(self.pairs)


class FlipCounter:
    """The flip rate of one model's run over a stream (``toolkit infer``): raw flips and the boundary/interior
    split, no flow. Only pairs of frames adjacent in the source count (a dropped or unreadable frame between
    two outputs would count motion over a longer interval); ``gaps`` says how many pairs were skipped."""

    def __init__(self, band_px: int = 3) -> None:
        self.acc = TemporalAccumulator(256, None, 0, band_px, flow=False)
        self.gaps = 0
        self._last: int | None = None

    def add(self, index: int, class_map: np.ndarray) -> None:
        if self._last is not None and index != self._last + 1:
            self.gaps += 1
            self.acc._prev = None  # start a new run of adjacent frames
        self._last = index
        m = np.asarray(class_map, np.uint8)
        self.acc.frame(index, str(index), m, None, [m])

    def summary(self) -> dict:
        return {**self.acc.reference_summary(), "gaps": self.gaps}


def _frame_miou(pred: np.ndarray, label: np.ndarray, k: int, ignore: int | None) -> float | None:
    cm = ConfusionMatrix(k, ignore)
    cm.update(pred, label)
    v = cm.scores().miou
    return None if np.isnan(v) else float(100 * v)


def _rate(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None
