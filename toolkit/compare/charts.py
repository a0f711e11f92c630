"""Inline SVG charts for the HTML parity report: per-class delta-IoU bars and a confusion-difference heat map.

Plain SVG strings (no matplotlib, no scripts), so the report stays one self-contained file that any
browser renders offline and that a test can parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

POS, NEG = (37, 99, 235), (220, 38, 38)  # blue: the candidate does better there; red: worse


def _rgb(c: tuple[int, int, int]) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def _mix(c: tuple[int, int, int], t: float) -> str:
    """``c`` faded toward white: t=0 white, t=1 the full colour."""
    t = float(min(max(t, 0.0), 1.0))
    r, g, b = (round(255 + (v - 255) * t) for v in c)
    return _rgb((r, g, b))


def delta_iou_bars(names: Sequence[str], deltas: Sequence[float | None], reference: Sequence[float | None],
                   title: str = "") -> str:
    """Horizontal bars of Δ IoU (points) per class around a zero axis, symmetric scale; '-' for undefined IoU.

    The scale never goes below ±0.05 points, so float noise is not blown up into full-width bars."""
    row, label_w, bar_w, value_w = 20, 150, 320, 70
    vmax = max([0.05, *(abs(d) for d in deltas if d is not None)])
    height = row * len(names) + 36
    width = label_w + bar_w + value_w
    mid = label_w + bar_w / 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title or "per-class delta IoU")}">']
    for i, (name, d, ref) in enumerate(zip(names, deltas, reference, strict=True)):
        y = 8 + i * row
        ref_txt = "-" if ref is None else f"{ref:.1f}"
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(name)} '
                     f'<tspan class="muted">({ref_txt})</tspan></text>')
        if d is None:
            parts.append(f'<text x="{mid + 4}" y="{y + 13}" class="muted">undefined</text>')
            continue
        w = abs(d) / vmax * (bar_w / 2 - 4)
        x = mid if d >= 0 else mid - w
        parts.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{max(w, 0.5):.1f}" height="{row - 6}" '
                     f'fill="{_rgb(POS if d >= 0 else NEG)}"><title>{escape(name)}: {d:+.3f} points</title></rect>')
        parts.append(f'<text x="{label_w + bar_w + 4}" y="{y + 13}">{d:+.3f}</text>')
    axis_y = 8 + len(names) * row
    parts.append(f'<line x1="{mid}" y1="4" x2="{mid}" y2="{axis_y}" stroke="#444" stroke-width="1"/>')
    parts.append(f'<text x="{label_w}" y="{axis_y + 16}" class="muted">{-vmax:+.2f}</text>')
    parts.append(f'<text x="{label_w + bar_w}" y="{axis_y + 16}" text-anchor="end" class="muted">{vmax:+.2f}</text>')
    parts.append(f'<text x="{mid}" y="{axis_y + 16}" text-anchor="middle" class="muted">Δ IoU, points '
                 '(reference IoU in brackets)</text>')
    parts.append("</svg>")
    return "".join(parts)


def confusion_difference_map(names: Sequence[str], diff: np.ndarray, row_totals: np.ndarray) -> str:
    """Heat map of (candidate - reference) confusion counts as % of each label class's pixels.

    Rows: label class, columns: predicted class; each row sums to 0. Red marks where the candidate is
    worse (fewer right on the diagonal, more confused off it), blue where it is better; the number is the
    signed change. The colour scale is symmetric around 0 and shared by every cell."""
    k = len(names)
    diff = np.asarray(diff, np.float64)
    totals = np.asarray(row_totals, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(totals[:, None] > 0, 100 * diff / totals[:, None], 0.0)
    vmax = max(float(np.abs(pct).max()), 1e-6)
    cell, left, top = 38, 110, 96
    width, height = left + cell * k + 56, top + cell * k + 8  # room for the last rotated column label
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart heat" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="confusion-matrix difference">']
    for j, name in enumerate(names):
        x = left + j * cell + cell / 2
        parts.append(f'<text transform="translate({x + 4},{top - 6}) rotate(-50)">{escape(name)}</text>')
    for i, name in enumerate(names):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end">{escape(name)}</text>')
        for j in range(k):
            v, n = pct[i, j], int(diff[i, j])
            worse = v < 0 if i == j else v > 0
            fill = _mix(NEG if worse else POS, abs(v) / vmax) if n else "#fff"
            stroke = ' stroke="#333" stroke-width="1.5"' if i == j else ' stroke="#ddd"'
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" fill="{fill}"{stroke}>'
                         f'<title>label {escape(name)} → predicted {escape(names[j])}: {n:+d} px '
                         f'({v:+.3f} % of {escape(name)})</title></rect>')
            if n and abs(v) >= 0.005:
                dark = abs(v) / vmax > 0.6
                txt = f"{v:+.2f}" if abs(v) < 10 else f"{v:+.0f}"
                parts.append(f'<text x="{left + j * cell + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                             f'class="cell{" inv" if dark else ""}">{txt}</text>')
    parts.append(f'<text x="4" y="14" class="muted">scale ±{vmax:.2f} %</text>')
    parts.append("</svg>")
    return "".join(parts)
