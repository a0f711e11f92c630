"""One self-contained HTML file from a ParityReport: where each candidate's segmentation moved, not only how much.

Everything is inline (CSS, SVG charts, images as base64 PNG from ``cv2.imencode``); no scripts, fonts or
links to fetch, so it opens offline and can be attached to a CI run. The numbers are the report's own
(the same as ``--json``); the worst frames come from the report's in-memory heap and are drawn here.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from html import escape
from pathlib import Path

import cv2
import numpy as np

from toolkit.compare.charts import confusion_difference_map, delta_iou_bars
from toolkit.compare.drift import WorstFrame, boundary_band
from toolkit.compare.results import CandidateResult, ParityReport
from toolkit.files import atomic_write

# The page may load nothing but its own inline styles and data: images; a browser blocks (and logs) anything
# else, so a report that would reach the network shows up as a console error instead of a silent fetch.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
THUMB_WIDTH = 320  # worst-frame images are drawn at most this wide (keeps the file small)
CHANGED_EDGE, CHANGED_INSIDE = (0, 90, 255), (230, 0, 40)  # disagreement map: on a boundary / inside an object

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:24px auto;
max-width:1400px;padding:0 16px;color:#1f2328;background:#fff;line-height:1.4}
h1{margin:0 0 4px}h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:32px}h3{margin:20px 0 8px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{border:1px solid #d0d7de;padding:4px 8px}
th{background:#f6f8fa;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}.muted{fill:#57606a;color:#57606a}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all;font-size:13px}
code{font-size:13px}.verdict{font-size:18px;margin:8px 0}.warn{color:#9a6700;font-weight:600}
.chart{font-size:12px;font-family:inherit;background:#fff}.cell{font-size:10px;fill:#1f2328}.cell.inv{fill:#fff}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.row>div{max-width:600px}
.frames{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0 18px}.frames figure{margin:0}
.frames img{display:block;border:1px solid #d0d7de;image-rendering:pixelated}
figcaption{font-size:12px;color:#57606a}
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #999;vertical-align:middle;margin:0 4px 0 10px}
nav a{margin-right:12px}
"""


def png_data_uri(rgb: np.ndarray) -> str:
    """An RGB uint8 image as a ``data:image/png;base64`` URI."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def colorize(class_map: np.ndarray, palette: list[list[int]]) -> np.ndarray:
    """Class ids -> RGB by the palette; ids outside it (the ignore label) are black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    return lut[np.asarray(class_map, np.uint8)]


def disagreement_map(reference: np.ndarray, candidate: np.ndarray, palette: list[list[int]],
                     band_px: int, width: int | None = None) -> np.ndarray:
    """The reference's map faded toward white, changed pixels on a reference boundary in blue and inside an
    object in red: the eye finds interior changes (the suspicious ones) at once.

    ``width`` draws it smaller; a changed pixel then still marks the pixel it falls in (area-averaged
    masks, not nearest sampling, which would drop most isolated changes)."""
    changed = reference != candidate
    edge = boundary_band(reference, band_px)
    masks = [changed & edge, changed & ~edge]
    faded = (255 - (255 - colorize(reference, palette).astype(np.float32)) * 0.25).astype(np.uint8)
    h, w = reference.shape
    if width is not None and width < w:
        size = (width, max(1, round(h * width / w)))
        faded = cv2.resize(faded, size, interpolation=cv2.INTER_NEAREST)
        masks = [cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0 for m in masks]
    faded[masks[0]] = CHANGED_EDGE
    faded[masks[1]] = CHANGED_INSIDE  # drawn last: where both fall in one drawn pixel, the interior shows
    return faded


def _thumb(rgb: np.ndarray, nearest: bool) -> np.ndarray:
    h, w = rgb.shape[:2]
    if w <= THUMB_WIDTH:
        return rgb
    size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def _img(rgb: np.ndarray, caption: str, nearest: bool = True) -> str:
    t = _thumb(rgb, nearest)
    return (f'<figure><img src="{png_data_uri(t)}" width="{t.shape[1]}" height="{t.shape[0]}" '
            f'alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>')


def _f(v: float | None, fmt: str = ".2f", none: str = "-") -> str:
    """A figure, or the placeholder where there is none: None, or NaN (an unlabelled clip's mIoU; JSON has null)."""
    return none if v is None or math.isnan(v) else format(v, fmt)


def _td(v: str) -> str:
    return f'<td class="num">{v}</td>'


def _summary_table(report: ParityReport) -> str:
    ref = report.reference
    ref_sha = ref.get("sha256", "")
    rows = [f"<tr><td>{escape(ref['name'])} (reference)</td><td>fp32</td><td>{escape(ref.get('backend', ''))}</td>"
            f"<td></td>{_td(_f(ref['miou']))}{_td('')}{_td('100')}{_td('')}{_td('')}<td></td><td></td>"
            f'<td><code title="{escape(ref_sha)}">{escape(ref_sha[:16])}</code></td></tr>']
    for i, c in enumerate(report.candidates):
        tol = f"≤ {c.tolerance.max_miou_drop} / ≥ {c.tolerance.min_pixel_agreement}"
        verdict = '<span class="pass">pass</span>' if c.passed else \
            f'<span class="fail">FAIL</span> {escape("; ".join(c.failures))}'
        sha = c.sha256 or ""
        rows.append(f'<tr><td><a href="#cand{i}">{escape(c.name)}</a></td><td>{escape(c.precision)}</td>'
                    f"<td>{escape(c.backend)}</td><td>{escape(c.lowering)}</td>{_td(_f(c.miou))}"
                    f"{_td(_f(c.delta_miou, '+.3f'))}{_td(_f(c.pixel_agreement, '.3f'))}"
                    f"{_td(_f(c.max_abs_logit_diff, '.2e'))}{_td(_f(c.mean_abs_logit_diff, '.2e'))}"
                    f"<td>{tol}</td><td>{verdict}</td>"
                    f'<td><code title="{escape(sha)}">{escape(sha[:16]) or "-"}</code></td></tr>')
    head = ("model", "precision", "backend", "unpool", "mIoU", "Δ mIoU", "agreement %", "max |Δ logit|",
            "mean |Δ logit|", "tolerance (drop / agreement)", "result", "sha256")
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def _boundary_table(report: ParityReport) -> str:
    ref = report.reference
    rows = []
    for c in report.candidates:
        d = c.drift or {}
        rows.append(f"<tr><td>{escape(c.name)}</td>{_td(format(d.get('changed_pixels', 0), ','))}"
                    f"{_td(_f(d.get('boundary_share'), '.1f'))}{_td(_f(d.get('band_area'), '.1f'))}"
                    f"{_td(_f(c.miou))}{_td(_f(d.get('miou_band')))}{_td(_f(d.get('delta_miou_band'), '+.3f'))}</tr>")
    head = ("candidate", "changed pixels", "on a boundary %", "boundary area %", "mIoU (full)",
            f"mIoU on the band (ref. {_f(ref.get('miou_band'))})", "Δ band mIoU")
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def _speed_table(report: ParityReport) -> str:
    rows = []
    for r in report.speed:
        lat = r.get("latency_ms", {})
        ratio = "1.00" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        rows.append(f"<tr><td>{escape(str(r.get('name', '')))}</td><td>{escape(str(r.get('precision', '')))}</td>"
                    f"{_td(_f(lat.get('p50'), '.1f'))}{_td(_f(lat.get('p90'), '.1f'))}{_td(_f(lat.get('p99'), '.1f'))}"
                    f"{_td(_f(r.get('throughput_fps')))}{_td(ratio)}</tr>")
    first = report.speed[0]
    shape = "x".join(map(str, first.get("shape", [])))
    noisy = _noise_lines(report.speed)
    head = ("model", "precision", "p50 ms", "p90 ms", "p99 ms", "FPS", "x reference")
    return (f"<p>One interleaved run (<code>toolkit bench</code>'s measurement): input {escape(shape)}, "
            f"{first.get('iterations')} timed calls per model after warm-up, threads "
            f"{escape(str(first.get('threads') or 'default'))}.</p><table><tr>"
            + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"
            + "".join(f'<p class="warn">{escape(line)}</p>' for line in noisy))


def _noise_lines(speed: list[dict]) -> list[str]:
    """``toolkit bench``'s busy-machine warnings (p90/p50 or p50/min past its threshold), one per noisy row."""
    from toolkit.bench import NOISY_P50_OVER_MIN, NOISY_P90_OVER_P50, spread_noise

    lines = []
    for r in speed:
        lat = r.get("latency_ms") or {}
        if not all(k in lat for k in ("p50", "p90", "min")):
            continue
        n = r.get("noise") or spread_noise(lat)
        if n.get("noisy"):
            lines.append(f"warning: {r.get('name', '')}: p90/p50 {n['p90_over_p50']}, p50/min {n['p50_over_min']} "
                         f"(above {NOISY_P90_OVER_P50} / {NOISY_P50_OVER_MIN}): the machine was busy while it was "
                         "timed; these figures and the ratios between models are not reliable")
    return lines


def _transitions_table(d: dict) -> str:
    top = d.get("top_transitions") or []
    if not top:
        return "<p>No pixel changed class.</p>"
    rows = "".join(f"<tr><td>{escape(t['from'])}</td><td>{escape(t['to'])}</td>{_td(format(t['pixels'], ','))}"
                   f"{_td(_f(t['share_of_changed'], '.1f'))}</tr>" for t in top)
    return ("<table><tr><th>reference class</th><th>candidate class</th><th>pixels</th><th>% of changed</th></tr>"
            + rows + "</table>")


def _legend(report: ParityReport) -> str:
    items = "".join(f'<span class="swatch" style="background:rgb({c[0]},{c[1]},{c[2]})"></span>{escape(n)}'
                    for n, c in zip(report.class_names, report.palette, strict=False))
    e, i = CHANGED_EDGE, CHANGED_INSIDE
    return (f"<p>Class colours:{items}</p><p>Disagreement map: the reference's classes faded;"
            f'<span class="swatch" style="background:rgb({e[0]},{e[1]},{e[2]})"></span>changed on a reference '
            f'boundary<span class="swatch" style="background:rgb({i[0]},{i[1]},{i[2]})"></span>changed inside '
            "an object.</p>")


def _worst(frames: list[WorstFrame], palette: list[list[int]], band_px: int) -> str:
    if not frames:
        return "<p>No frames kept.</p>"
    out = []
    for f in frames:
        share = _f(100 * f.changed_on_boundary / f.changed if f.changed else None, ".0f")
        out.append(f"<h4>{escape(f.name)} (frame {f.index}): agreement {f.agreement:.2f} %, {f.changed:,} pixels "
                   f"changed, {share} % of them on a boundary</h4>")
        out.append('<div class="frames">' + _img(f.image, "frame", nearest=False)
                   + _img(colorize(f.reference, palette), "reference")
                   + _img(colorize(f.candidate, palette), "candidate")
                   + _img(disagreement_map(f.reference, f.candidate, palette, band_px, THUMB_WIDTH), "disagreement")
                   + "</div>")
    return "".join(out)


def _candidate(i: int, c: CandidateResult, report: ParityReport) -> str:
    names = report.class_names
    d = c.drift or {}
    parts = [f'<h2 id="cand{i}">{escape(c.name)} <small class="{"pass" if c.passed else "fail"}">'
             f'{"pass" if c.passed else "FAIL"}</small></h2>',
             f"<p>{escape(c.precision)}, {escape(c.backend)}{', ' + escape(c.lowering) if c.lowering else ''}: "
             f"mIoU {_f(c.miou)} (Δ {_f(c.delta_miou, '+.3f')}), agreement {_f(c.pixel_agreement, '.3f')} %"
             f"{', ' + escape(c.path) if c.path else ''}</p>"]
    ref_iou = [report.reference["per_class_iou"].get(n) for n in names]
    bars = delta_iou_bars(names, [c.per_class_delta_iou.get(n) for n in names], ref_iou, f"{c.name} delta IoU")
    parts.append('<div class="row"><div><h3>Per-class Δ IoU</h3>' + bars + "</div>")
    if "confusion_difference" in d:
        diff = np.asarray(d["confusion_difference"], np.int64)
        trans = np.asarray(d["transitions"], np.int64)
        parts.append("<div><h3>Confusion-matrix difference (candidate − reference)</h3>"
                     + confusion_difference_map(names, diff, _label_totals(report, diff))
                     + '<p class="muted">Rows: label, columns: predicted; % of the label class\'s pixels. Red: '
                     "the candidate does worse there (fewer right, more confused), blue: better.</p></div>")
        parts.append("<div><h3>Which classes turn into which</h3>" + _transitions_table(d)
                     + f"<p class=\"muted\">{int(trans.sum() - np.trace(trans)):,} of {int(trans.sum()):,} "
                     "pixels changed class (all pixels, void included).</p></div>")
    parts.append("</div>")
    from toolkit.compare.layers_report import layers_section, plan_section

    parts += [plan_section(c), layers_section(c)]
    frames = report.worst_frames[i] if i < len(report.worst_frames) else []
    parts.append(f"<h3>Lowest-agreement frames ({len(frames)})</h3>")
    parts.append(_worst(frames, report.palette, int(d.get("band_px", report.reference.get("band_px", 3)))))
    return "".join(parts)


def _label_totals(report: ParityReport, diff: np.ndarray) -> np.ndarray:
    """Labelled pixels per class (the confusion rows' sums); a report without them scales by the changes."""
    totals = report.reference.get("label_pixels")
    return np.asarray(totals, np.float64) if totals is not None else np.maximum(np.abs(diff).sum(1), 1)


def render_html(report: ParityReport, title: str = "Parity report") -> str:
    """The whole page as one string."""
    ref, ds = report.reference, report.dataset
    verdict = ('<p class="verdict pass">every candidate passed</p>' if report.passed else
               f'<p class="verdict fail">{sum(not c.passed for c in report.candidates)} of '
               f"{len(report.candidates)} candidates failed</p>")
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    split = ds.get("split") or ""
    labels = f"; labels: {escape(str(ds['labels']))}" if ds.get("labels") else ""
    band = ref.get("band_px", 3)
    nav = "".join(f'<a href="#cand{i}">{escape(c.name)}</a>' for i, c in enumerate(report.candidates))
    body = [f"<h1>{escape(title)}</h1>", verdict,
            f"<p>{ds.get('images')} frames{' of ' + escape(str(ds.get('root'))) if ds.get('root') else ''}"
            f"{', split ' + escape(str(split)) if split else ''}; reference {escape(ref['name'])} "
            f"(mIoU {_f(ref['miou'])}, sha256 <code>{escape(ref.get('sha256', '-'))}</code>){labels}; "
            f"written {when}.</p>",
            f"<pre>{escape(report.command or '(command not recorded)')}</pre>",
            f"<nav>candidates: {nav}</nav>", "<h2>Summary</h2>", _summary_table(report),
            "<p class=\"muted\">mIoU and Δ in percentage points; agreement: pixels whose class equals the "
            "reference's, over every pixel of every frame.</p>",
            "<h2>Boundary vs interior</h2>",
            f"<p>A changed pixel is <em>on a boundary</em> when it lies within {band} pixels of a class boundary of "
            "the reference's map; <em>boundary area</em> is the share of all pixels there, the share the changes "
            f"would have if they fell anywhere. The band mIoU is computed on the pixels within {band} pixels of a "
            "label boundary only (a trimap), where lower precision is expected to move first.</p>",
            _boundary_table(report)]
    if report.speed:
        body += ["<h2>Speed</h2>", _speed_table(report)]
    if any(c.temporal for c in report.candidates):  # parity --video
        from toolkit.compare.temporal_html import temporal_section

        body.append(temporal_section(report, _img, colorize, THUMB_WIDTH))
    body.append(_legend(report))
    body += [_candidate(i, c, report) for i, c in enumerate(report.candidates)]
    body.append('<p class="muted">Written by <code>toolkit parity --report</code>; every number is also in '
                "the <code>--json</code> output.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_html(report: ParityReport, path: str | Path, title: str = "Parity report") -> Path:
    """Render and write atomically (a temp file renamed over ``path``): the file is never half-written."""
    text = render_html(report, title)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
