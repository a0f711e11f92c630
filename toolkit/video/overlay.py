"""Drawing on frames with OpenCV primitives only (palette lookup, addWeighted, putText): no per-pixel Python.

An ``Overlay`` is built once per run (palette table, legend image) and then turns (frame, class map) into
the annotated frame in a few milliseconds at 360x480.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toolkit.core import defaults

FONT = cv2.FONT_HERSHEY_SIMPLEX
LEGEND_MAX_AREA = 0.15  # of the frame: on a 240-pixel-wide frame the 11 CamVid classes took ~35 %


def palette_table(palette: Sequence[Sequence[int]]) -> np.ndarray:
    """256 x 3 uint8 RGB lookup table; labels beyond the palette (void) map to black."""
    table = np.zeros((256, 3), np.uint8)
    table[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    return table


def colorize(mask: np.ndarray, table: np.ndarray) -> np.ndarray:
    """H x W uint8 class map -> H x W x 3 RGB colours: one single-channel cv2.LUT per colour channel, merged
    (~10x faster than table[mask], and a third faster than a 3-channel LUT of the mask converted to RGB)."""
    mask = np.ascontiguousarray(mask, np.uint8)
    return cv2.merge([cv2.LUT(mask, np.ascontiguousarray(table[:, c])) for c in range(3)])


def draw_legend(class_names: Sequence[str], palette: Sequence[Sequence[int]], scale: float = 0.4) -> np.ndarray:
    """A small RGB image listing each class beside its colour swatch (drawn once, pasted every frame)."""
    (_tw, th), base = cv2.getTextSize("Mg", FONT, scale, 1)
    row = th + base + 4
    width = max(cv2.getTextSize(n, FONT, scale, 1)[0][0] for n in class_names) + row + 12
    img = np.full((row * len(class_names) + 6, width, 3), 32, np.uint8)
    for i, (name, colour) in enumerate(zip(class_names, palette, strict=False)):
        y = 3 + i * row
        cv2.rectangle(img, (4, y + 2), (4 + row - 4, y + row - 2), tuple(int(c) for c in colour), -1)
        cv2.putText(img, name, (row + 6, y + th + 2), FONT, scale, (240, 240, 240), 1, cv2.LINE_AA)
    return img


def paste(dst: np.ndarray, patch: np.ndarray, x: int, y: int, alpha: float = 0.85) -> None:
    """Blend ``patch`` into ``dst`` at (x, y), clipped to the frame."""
    h = min(patch.shape[0], dst.shape[0] - y)
    w = min(patch.shape[1], dst.shape[1] - x)
    if h <= 0 or w <= 0:
        return
    roi = dst[y:y + h, x:x + w]
    cv2.addWeighted(patch[:h, :w], alpha, roi, 1 - alpha, 0, dst=roi)


def draw_hud(img: np.ndarray, lines: Sequence[str], scale: float = 0.45) -> None:
    """White text on a dark band, top-left: FPS, model latency, backend/precision."""
    if not lines:
        return
    (_, th), base = cv2.getTextSize("Mg", FONT, scale, 1)
    row = th + base + 3
    width = max(cv2.getTextSize(s, FONT, scale, 1)[0][0] for s in lines) + 10
    band = np.zeros((row * len(lines) + 6, width, 3), np.uint8)
    paste(img, band, 0, 0, alpha=0.6)
    for i, text in enumerate(lines):
        cv2.putText(img, text, (5, 3 + th + i * row), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


@dataclass
class OverlayStyle:
    alpha: float = defaults.OVERLAY_ALPHA  # weight of the class colours in the blend (0 = frame only, 1 = colours only)
    legend: bool = True
    hud: bool = True
    side_by_side: bool = False  # frame | overlay instead of the overlay alone


class Overlay:
    """(RGB frame, class map, HUD lines) -> annotated RGB frame."""

    def __init__(self, class_names: Sequence[str], palette: Sequence[Sequence[int]],
                 style: OverlayStyle | None = None) -> None:
        self.style = style or OverlayStyle()
        if not 0.0 <= self.style.alpha <= 1.0:
            from toolkit.errors import ToolkitError

            raise ToolkitError(f"overlay alpha {self.style.alpha}: expected a value in [0, 1]")
        self.table = palette_table(palette)
        self.legend = draw_legend(class_names, palette) if self.style.legend else None
        self._legends: dict[tuple[int, int], np.ndarray] = {}

    def _legend_for(self, hw: tuple[int, int]) -> np.ndarray | None:
        """The legend scaled down to at most 90% of the frame height, 40% of its width and LEGEND_MAX_AREA of
        its area (cached per size): on small frames the segmentation, not the legend, must stay visible."""
        if self.legend is None:
            return None
        if hw not in self._legends:
            lh, lw = self.legend.shape[:2]
            f = min(1.0, 0.9 * hw[0] / lh, 0.4 * hw[1] / lw, (LEGEND_MAX_AREA * hw[0] * hw[1] / (lh * lw)) ** 0.5)
            self._legends[hw] = self.legend if f >= 1.0 else cv2.resize(
                self.legend, (max(1, int(lw * f)), max(1, int(lh * f))), interpolation=cv2.INTER_AREA)
        return self._legends[hw]

    def output_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of the frames ``__call__`` returns for frames of ``frame_hw``."""
        h, w = frame_hw
        return (h, 2 * w) if self.style.side_by_side else (h, w)

    def __call__(self, frame: np.ndarray, mask: np.ndarray, hud: Sequence[str] = ()) -> np.ndarray:
        colours = colorize(mask, self.table)
        a = self.style.alpha
        blended = cv2.addWeighted(colours, a, frame, 1 - a, 0)
        legend = self._legend_for(blended.shape[:2])
        if legend is not None:
            paste(blended, legend, max(0, blended.shape[1] - legend.shape[1] - 4), 4)
        out = np.concatenate([frame, blended], axis=1) if self.style.side_by_side else blended
        if self.style.hud:
            draw_hud(out, hud)
        return out
