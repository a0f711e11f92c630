"""The HTML parity report's temporal section (``parity --video``): a flicker-over-time plot and, per candidate,
the frame pair where it flickered most beyond the reference, side by side. Inline SVG and data: images only,
like the rest of the report (``toolkit.compare.html``)."""

from __future__ import annotations

from html import escape

import numpy as np

from toolkit.compare.results import ParityReport
from toolkit.compare.temporal import FlickerPair

LINE_COLOURS = ("#cf222e", "#0969da", "#1a7f37", "#8250df", "#bc4c00", "#116329", "#a40e26", "#0550ae")
ONLY_CANDIDATE, BOTH, ONLY_REFERENCE = (230, 0, 40), (120, 120, 120), (0, 90, 255)


def flicker_plot(series: list[tuple[str, list[float]]], indices: list[int], width: int = 760,
                 height: int = 240) -> str:
    """Flip rate (% of pixels) per frame pair, one polyline per model (the reference first, in black)."""
    left, right, top, bottom = 50, 160, 10, 30
    n = len(indices)
    ymax = max([0.1, *(v for _, vals in series for v in vals)])
    pw, ph = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> str:
        x = left + (pw * i / max(n - 1, 1))
        return f"{x:.1f},{top + ph * (1 - v / ymax):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="flip rate per frame pair">',
             f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>',
             f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" class="muted">{ymax:.2f}</text>',
             f'<text x="{left - 4}" y="{top + ph}" text-anchor="end" class="muted">0</text>']
    if n:
        parts.append(f'<text x="{left}" y="{height - 8}" class="muted">frame {indices[0]}</text>'
                     f'<text x="{left + pw}" y="{height - 8}" text-anchor="end" class="muted">frame '
                     f"{indices[-1]}</text>")
    for k, (name, vals) in enumerate(series):
        colour = "#1f2328" if k == 0 else LINE_COLOURS[(k - 1) % len(LINE_COLOURS)]
        pts = " ".join(xy(i, v) for i, v in enumerate(vals))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{2 if k == 0 else 1.5}" '
                     f'points="{pts}"><title>{escape(name)}</title></polyline>')
        parts.append(f'<text x="{left + pw + 8}" y="{top + 14 + 16 * k}" fill="{colour}">{escape(name[:22])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def flip_map(pair: FlickerPair, width: int | None = None) -> np.ndarray:
    """Pixels that flip in the candidate only (red), in both (grey), in the reference only (blue)."""
    import cv2

    cand = pair.candidate[0] != pair.candidate[1]
    ref = pair.reference[0] != pair.reference[1]
    out = np.full((*cand.shape, 3), 255, np.uint8)
    layers = [(ref & ~cand, ONLY_REFERENCE), (ref & cand, BOTH), (cand & ~ref, ONLY_CANDIDATE)]
    h, w = cand.shape
    if width is not None and width < w:
        size = (width, max(1, round(h * width / w)))
        out = cv2.resize(out, size, interpolation=cv2.INTER_NEAREST)
        layers = [(cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0, c) for m, c in layers]
    for mask, colour in layers:
        out[mask] = colour
    return out


def temporal_section(report: ParityReport, image, colorize, thumb_width: int) -> str:
    """The section's HTML; ``image(rgb, caption, nearest)`` and ``colorize(map, palette)`` are the report's own
    figure helpers (passed in so that this module does not import the page module)."""
    cands = [c for c in report.candidates if c.temporal]
    if not cands:
        return ""
    first = cands[0].temporal
    rows = []
    for c in cands:
        d = c.temporal

        def f(key: str, fmt: str = ".3f", d: dict = d) -> str:
            return "-" if d.get(key) is None else format(d[key], fmt)

        rows.append(f"<tr><td>{escape(c.name)}</td>" + "".join(
            f'<td class="num">{f(k, fmt)}</td>' for k, fmt in (
                ("flip_rate", ".3f"), ("reference_flip_rate", ".3f"), ("excess_flip_rate", "+.3f"),
                ("excess_boundary_flip_rate", "+.3f"), ("excess_interior_flip_rate", "+.3f"),
                ("compensated_flip_rate", ".3f"), ("reference_compensated_flip_rate", ".3f"),
                ("excess_compensated_flip_rate", "+.3f"))) + "</tr>")
    head = ("candidate", "flip %", "reference flip %", "excess", "boundary excess", "interior excess",
            "flow-comp. flip %", "flow-comp. reference %", "flow-comp. excess")
    series = [(report.reference["name"] + " (reference)", first["per_pair"]["reference_flip_rate"])]
    series += [(c.name, c.temporal["per_pair"]["flip_rate"]) for c in cands]
    parts = ["<h2 id=\"temporal\">Flicker over time</h2>",
             f"<p>{first['frames']} frames in order, {first['pairs']} consecutive pairs. <em>Flip rate</em>: the "
             "share of pixels whose class changes from one frame to the next; <em>excess</em>: a candidate's "
             "minus the reference's on the same pairs (points), the flicker the candidate adds. Boundary: within "
             f"{first['band_px']} px of a class boundary of the reference in either frame "
             f"({'-' if first['boundary_area'] is None else format(first['boundary_area'], '.1f')} % of pixels). "
             "Flow-compensated: the previous map is first warped along the dense optical flow of the frames "
             "themselves (OpenCV Farnebäck), so motion no longer counts.</p>",
             "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>",
             "<h3>Flip rate per frame pair (%)</h3>",
             flicker_plot(series, first["per_pair"]["index"])]
    for i, c in enumerate(report.candidates):
        pair = report.flicker_pairs[i] if i < len(report.flicker_pairs) else None
        if not c.temporal:
            continue
        if pair is None:
            parts.append(f"<h3>{escape(c.name)}: no pair flickered more than the reference</h3>")
            continue
        pal = report.palette
        parts.append(f"<h3>{escape(c.name)}: largest excess, {escape(pair.names[0])} -> {escape(pair.names[1])} "
                     f"(+{pair.excess:.3f} points on this pair)</h3>")
        parts.append('<div class="frames">' + image(pair.images[0], pair.names[0], False)
                     + image(pair.images[1], pair.names[1], False)
                     + image(colorize(pair.candidate[0], pal), "candidate, first", True)
                     + image(colorize(pair.candidate[1], pal), "candidate, second", True)
                     + image(colorize(pair.reference[1], pal), "reference, second", True)
                     + image(flip_map(pair, thumb_width), "flips: candidate only / both / reference only", True)
                     + "</div>")
    r, b, g = ONLY_CANDIDATE, ONLY_REFERENCE, BOTH
    parts.append(f'<p>Flip map: <span class="swatch" style="background:rgb{r}"></span>flips in the candidate only'
                 f'<span class="swatch" style="background:rgb{g}"></span>in both'
                 f'<span class="swatch" style="background:rgb{b}"></span>in the reference only.</p>')
    return "".join(parts)
