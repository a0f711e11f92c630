"""``parity --layers`` on a report, and the report's per-layer chart and mixed-precision plan sections."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from toolkit.compare.results import CandidateResult, ParityReport


def attach_layers(report: ParityReport, reference: Path, reference_onnx: Path | None, candidates: Sequence[str],
                  data: Path, split: str, frames: int, band_px: int) -> list[str]:
    """Fill each ONNX candidate's ``layers`` and ``first_divergence``; one line per candidate for the user.

    Without ``reference_onnx`` the reference checkpoint is exported (mask lowering) to a temporary file."""
    from toolkit.compare.layers import layers_for_candidates

    with tempfile.TemporaryDirectory(prefix="toolkit-layers-") as tmp:
        if reference_onnx is None:
            from toolkit.core.onnx_file import save_onnx
            from toolkit.export import export_checkpoint

            reference_onnx = Path(tmp) / "reference_fp32.onnx"
            save_onnx(export_checkpoint(reference, unpool="mask"), reference_onnx)
        results = layers_for_candidates(reference_onnx, [Path(c) for c in candidates], data, split, frames, band_px)
        shown = str(reference_onnx) if Path(tmp) not in reference_onnx.parents else "exported on the fly"
    lines = []
    for c, res in zip(report.candidates, results, strict=True):
        if res is None:
            lines.append(f"layers: {c.name}: not an ONNX file, no intermediate tensors to compare")
            continue
        res["reference_onnx"] = shown
        c.layers = res["layers"]
        c.first_divergence = {"rule": res["rule"], "frames": res["frames"], "reference_onnx": shown,
                              "largest_jump": res["largest_jump"], **(res["first_divergence"] or {"node": None})}
        fd = res["first_divergence"]
        lines.append(f"layers: {c.name}: " + ("no divergence" if fd is None else
                     f"drift starts at {fd['node']} ({fd['module'] or fd['op']}): rel error {fd['rel_error']:.2e}, "
                     f"{fd['snr_db']:.1f} dB SNR") + f" ({len(res['layers'])} layers, {res['frames']} frames)")
    return lines


def layers_chart(rows: Sequence[dict], first: str | None) -> str:
    """One bar per layer (graph order), height log10(rel error) from 1e-7 to 10; the first divergence in red."""
    w_bar, h, left = 12, 160, 40
    width = left + w_bar * len(rows) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{h + 30}" '
             f'role="img" aria-label="per-layer relative error">']
    for dec in range(-7, 2, 2):
        y = h - (dec + 7) / 8 * h
        parts.append(f'<text x="{left - 4}" y="{y + 4:.0f}" text-anchor="end" class="muted">1e{dec}</text>'
                     f'<line x1="{left}" y1="{y:.0f}" x2="{width}" y2="{y:.0f}" stroke="#ddd"/>')
    for i, r in enumerate(rows):
        v = r["rel_error"]
        frac = 0.0 if not v else float(np.clip((np.log10(v) + 7) / 8, 0.01, 1.0))
        colour = "#c0392b" if r["node"] == first else ("#e67e22" if r.get("jump") else "#4a78b5")
        tip = f'{r["node"]} ({r["module"] or r["op"]}): rel error {v:.2e}'
        parts.append(f'<rect x="{left + i * w_bar}" y="{h - frac * h:.1f}" width="{w_bar - 2}" height="{frac * h:.1f}" '
                     f'fill="{colour}"><title>{escape(tip)}</title></rect>')
    parts.append(f'<text x="{left}" y="{h + 20}" class="muted">layers in graph order (hover for names); red: first '
                 "divergence, orange: other jumps</text></svg>")
    return "".join(parts)


def layers_section(c: CandidateResult) -> str:
    if not c.layers:
        return ""
    fd = c.first_divergence or {}
    head = ("no layer's error jumps" if not fd.get("node") else
            f"drift starts at <b>{escape(fd['node'])}</b> ({escape(fd.get('module') or fd['op'])}), rel error "
            f"{fd['rel_error']:.2e}")
    rows = "".join(f"<tr><td>{escape(r['node'])}</td><td>{escape(r['module'])}</td><td>{escape(r['op'])}</td>"
                   f"<td>{r['rel_error']:.2e}</td><td>{'-' if r['snr_db'] is None else format(r['snr_db'], '.1f')}</td>"
                   f"<td>{'-' if r['rel_error_boundary'] is None else format(r['rel_error_boundary'], '.2e')}</td>"
                   f"<td>{'-' if r['rel_error_interior'] is None else format(r['rel_error_interior'], '.2e')}</td>"
                   "</tr>" for r in c.layers)
    return (f"<h3>Per layer vs the fp32 ONNX ({fd.get('frames', '?')} frames)</h3><p>{head}. Rule: "
            f"{escape(fd.get('rule', ''))}.</p>" + layers_chart(c.layers, fd.get("node"))
            + "<details><summary>per-layer table</summary><table><tr><th>node</th><th>module</th><th>op</th>"
              "<th>rel error</th><th>SNR dB</th><th>boundary</th><th>interior</th></tr>" + rows
            + "</table></details>")


def plan_section(c: CandidateResult) -> str:
    p = c.plan
    if not p:
        return ""
    budget = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in p.get("budget", {}).items() if v is not None)
    b, a = p.get("drift_before") or {}, p.get("drift_after") or {}

    def drift(d: dict) -> str:
        return (f"mIoU drop {d.get('miou_drop', 0):.3f}, worst class {escape(str(d.get('worst_class', '')))} "
                f"{d.get('worst_class_drop', 0):.3f}") if d else "-"

    kept = ", ".join(escape(k) for k in p.get("kept", [])) or "none"
    return (f"<h3>Mixed-precision plan ({escape(p.get('target', ''))})</h3><p>Budget: {escape(budget)}; "
            f"{'met' if p.get('met') else '<b>not met</b>'}: {escape(p.get('reason', ''))}.</p>"
            f"<p>Kept in {escape(p.get('keep_precision', ''))}: {kept}; {100 * p.get('int8_share', 0):.0f} % of "
            f"the layers in int8. Tune drift before: {drift(b)}; after: {drift(a)}.</p>")
