"""What a reader of the HTML parity report sees, cell by cell: every table's figures (number, sign, unit,
placeholder, row order) against the ParityReport they came from, the warnings and when they appear, which
sections appear when, the exact colours of the drawn maps, thumbnails and data URIs (issue 29's mutants)."""

from __future__ import annotations

import base64
import datetime as real_dt
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

import toolkit.compare.html as H
from tests.helpers.report import synthetic_report
from toolkit.compare import ParityReport
from toolkit.compare.charts import confusion_difference_map, delta_iou_bars
from toolkit.compare.drift import WorstFrame, boundary_band


class _Tables(HTMLParser):
    """Every table as rows of cells; a cell is (text, {tag: attrs} of the tags inside it and its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, dict]]]] = []
        self.cell: list | None = None
        self.depth = 0
        self.stray = ""  # text inside a table but outside its cells (a reader sees it above the table)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
            self.depth += 1
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ["", {tag: dict(attrs)}]
        elif self.cell is not None:
            self.cell[1][tag] = dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag == "table"
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append((self.cell[0], self.cell[1]))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell[0] += data
        elif self.depth:
            self.stray += data


def tables(page: str) -> dict[str, list[list[tuple[str, dict]]]]:
    """Tables keyed by their first header cell."""
    p = _Tables()
    p.feed(page)
    assert p.stray.strip() == "" and p.depth == 0
    out: dict[str, list] = {}
    for t in p.tables:
        out.setdefault(t[0][0][0], []).append(t)
    return out


def texts(rows: list) -> list[list[str]]:
    return [[c[0] for c in r] for r in rows]


class _Clock:
    UTC = real_dt.UTC

    class datetime:  # stands in for datetime.datetime
        @staticmethod
        def now(tz: object) -> real_dt.datetime:
            assert tz is real_dt.UTC
            return real_dt.datetime(2031, 4, 5, 6, 7, 8, tzinfo=real_dt.UTC)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(H, "_dt", _Clock)


@pytest.fixture(scope="module")
def base() -> ParityReport:
    return synthetic_report()


@pytest.fixture
def varied(base: ParityReport) -> ParityReport:
    """The synthetic report with the second candidate failing, unhashed, unlowered, without drift, with None
    figures, and a third candidate that drifted without any transitions."""
    a, b = base.candidates
    b2 = replace(b, name="b<&>", sha256=None, lowering="", path="", passed=False,
                 failures=["mIoU drop 2.000 > 1.0", "x < y"], delta_miou=-2.0, drift=None,
                 max_abs_logit_diff=None, mean_abs_logit_diff=None)
    c3 = replace(a, name="third", drift={**a.drift, "top_transitions": [], "boundary_share": None,
                                         "band_area": None, "miou_band": None, "delta_miou_band": None,
                                         "band_px": 5},
                 sha256="ef" * 32, delta_miou=0.0004, passed=True, failures=[])
    c3.drift["changed_pixels"] = 12345
    speed = [dict(base.speed[0], threads=3),
             {"name": "b<&>", "precision": "int8", "ratio": 2.345, "throughput_fps": 1234.567,
              "latency_ms": {"p50": 1.25, "p90": 2.35, "p99": 3.45}},
             {"name": "third", "precision": "fp16", "ratio": 0.5, "latency_ms": {}}]
    return replace(base, candidates=[a, b2, c3], speed=speed,
                   worst_frames=[base.worst_frames[0], [], base.worst_frames[1]])


def test_summary_table_cell_by_cell(varied: ParityReport) -> None:
    page = H.render_html(varied)
    rows = tables(page)["model"][0]  # the speed table's comes second
    assert texts(rows)[0] == ["model", "precision", "backend", "unpool", "mIoU", "Δ mIoU", "agreement %",
                              "max |Δ logit|", "mean |Δ logit|", "tolerance (drop / agreement)", "result", "sha256"]
    ref = varied.reference
    assert texts(rows)[1] == [f"{ref['name']} (reference)", "fp32", ref["backend"], "", f"{ref['miou']:.2f}", "",
                              "100", "", "", "", "", ref["sha256"][:16]]
    assert rows[1][-1][1]["code"]["title"] == ref["sha256"]
    assert len(rows) == 2 + len(varied.candidates)
    for i, (c, row) in enumerate(zip(varied.candidates, rows[2:], strict=True)):
        fmt = (lambda v, f: "-" if v is None else format(v, f))  # noqa: E731
        result = "pass" if c.passed else "FAIL " + "; ".join(c.failures)
        assert texts([row])[0] == [c.name, c.precision, c.backend, c.lowering, f"{c.miou:.2f}",
                                   f"{c.delta_miou:+.3f}", f"{c.pixel_agreement:.3f}",
                                   fmt(c.max_abs_logit_diff, ".2e"), fmt(c.mean_abs_logit_diff, ".2e"),
                                   f"≤ {c.tolerance.max_miou_drop} / ≥ {c.tolerance.min_pixel_agreement}",
                                   result, (c.sha256 or "")[:16] or "-"], i
        assert row[0][1]["a"]["href"] == f"#cand{i}"
        assert row[-1][1]["code"]["title"] == (c.sha256 or "")
        assert row[-2][1]["span"]["class"] == ("pass" if c.passed else "fail")
        for cell in row[4:9]:
            assert cell[1]["td"]["class"] == "num"
    assert texts(rows)[4][5] == "+0.000"  # the sign stays on a rounded-away change
    assert "b&lt;&amp;&gt;" in page and "b<&>" not in page  # names escaped
    bare = replace(varied, reference={k: v for k, v in varied.reference.items() if k not in ("sha256", "backend")})
    ref_row = tables(H.render_html(bare))["model"][0][1]
    assert [cell[0] for cell in ref_row][2] == "" and ref_row[-1][0] == "" and ref_row[-1][1]["code"]["title"] == ""


def test_boundary_table_cell_by_cell(varied: ParityReport) -> None:
    (rows,) = tables(H.render_html(varied))["candidate"]
    assert texts(rows)[0] == ["candidate", "changed pixels", "on a boundary %", "boundary area %", "mIoU (full)",
                              f"mIoU on the band (ref. {varied.reference['miou_band']:.2f})", "Δ band mIoU"]
    a, b, c = varied.candidates
    d = a.drift
    assert texts(rows)[1] == [a.name, f"{d['changed_pixels']:,}", f"{d['boundary_share']:.1f}",
                              f"{d['band_area']:.1f}", f"{a.miou:.2f}", f"{d['miou_band']:.2f}",
                              f"{d['delta_miou_band']:+.3f}"]
    assert texts(rows)[2] == [b.name, "0", "-", "-", f"{b.miou:.2f}", "-", "-"]  # no drift: placeholders
    assert texts(rows)[3] == [c.name, "12,345", "-", "-", f"{c.miou:.2f}", "-", "-"]  # the separator too
    no_band = replace(varied, reference={k: v for k, v in varied.reference.items() if k != "miou_band"})
    assert texts(tables(H.render_html(no_band))["candidate"][0])[0][5] == "mIoU on the band (ref. -)"


def test_speed_table_cell_by_cell_and_its_caption(varied: ParityReport) -> None:
    page = H.render_html(varied)
    _summary, rows = tables(page)["model"]
    assert texts(rows) == [["model", "precision", "p50 ms", "p90 ms", "p99 ms", "FPS", "x reference"],
                           ["torch", "fp32", "10.0", "11.0", "12.0", "99.00", "1.00"],
                           ["b<&>", "int8", "1.2", "2.4", "3.5", "1234.57", "2.35"],
                           ["third", "fp16", "-", "-", "-", "-", "0.50"]]
    assert "<td>b&lt;&amp;&gt;</td><td>int8</td>" in page
    assert ("<p>One interleaved run (<code>toolkit bench</code>'s measurement): input 1x3x120x160, "
            "4 timed calls per model after warm-up, threads 3.</p>") in page
    assert "threads default.</p>" in H.render_html(replace(varied, speed=varied.speed[:1] and
                                                            [dict(varied.speed[0], threads=None)]))
    lat = {"p50": 10.0, "p90": 30.0, "p99": 40.0, "min": 9.0}
    two = H.render_html(replace(varied, speed=[{"name": "x", "latency_ms": lat}, {"name": "y", "latency_ms": lat}]))
    assert re.findall(r'</table><p class="warn">warning: x: [^<]*</p><p class="warn">warning: y: [^<]*</p>\n', two)
    bare = H.render_html(replace(varied, speed=[{}]))
    assert "input , None timed calls per model after warm-up, threads default.</p>" in bare
    assert texts(tables(bare)["model"][1])[1] == ["", "", "-", "-", "-", "-", "1.00"]


def test_noise_lines_only_for_complete_noisy_rows_and_a_recorded_verdict_wins() -> None:
    lat = {"p50": 100.0, "p90": 110.0, "p99": 120.0, "min": 95.0}
    rows = [{"name": "steady", "latency_ms": lat},
            {"name": "incomplete", "latency_ms": {"p50": 1.0, "p90": 50.0}},  # no min: not judged
            {"name": "none", "latency_ms": None},
            {"name": "p90", "latency_ms": {**lat, "p90": 151.0}},
            {"name": "min", "latency_ms": {**lat, "min": 66.0}},
            {"name": "recorded", "latency_ms": lat, "noise": {"noisy": True, "p90_over_p50": 9, "p50_over_min": 8}},
            {"name": "recorded-quiet", "latency_ms": {**lat, "p90": 999.0}, "noise": {"noisy": False}},
            {"latency_ms": {**lat, "p90": 1000.0}}]
    assert H._noise_lines(rows) == [
        f"warning: {n}: p90/p50 {a}, p50/min {m} (above 1.5 / 1.5): the machine was busy while it was timed; "
        "these figures and the ratios between models are not reliable"
        for n, a, m in (("p90", 1.51, 1.053), ("min", 1.1, 1.515), ("recorded", 9, 8), ("", 10.0, 1.053))]
    assert H._noise_lines(rows[:3] + rows[6:7]) == []


def test_sections_appear_when_their_data_does(varied: ParityReport, frozen: None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.compare.layers_report as L
    import toolkit.compare.temporal_html as T

    seen: list = []

    def temporal(report: ParityReport, image: object, colorize: object, width: int) -> str:
        seen.append((report, image, colorize, width))
        return "<section>TEMPORAL</section>"

    monkeypatch.setattr(T, "temporal_section", temporal)
    monkeypatch.setattr(L, "plan_section", lambda c: f"<p>PLAN {c.name}</p>")
    monkeypatch.setattr(L, "layers_section", lambda c: f"<p>LAYERS {c.name}</p>")
    page = H.render_html(varied)
    assert "TEMPORAL" not in page and not seen
    for c in varied.candidates:
        assert f"<p>PLAN {c.name}</p><p>LAYERS {c.name}</p><h3>Lowest-agreement frames" in page
    assert page.count("<h2>Speed</h2>") == 1
    assert "<h2>Speed</h2>" not in H.render_html(replace(varied, speed=[]))
    cands = list(varied.candidates)
    cands[2] = replace(cands[2], temporal={"x": 1})
    vid = replace(varied, candidates=cands)
    page = H.render_html(vid)
    assert seen == [(vid, H._img, H.colorize, H.THUMB_WIDTH)]
    assert page.index("TEMPORAL") < page.index("<p>Class colours:") < page.index('<h2 id="cand0">')
    assert page.index("<h2>Summary</h2>") < page.index("<h2>Boundary vs interior</h2>") < page.index(
        "<h2>Speed</h2>") < page.index("TEMPORAL")


def test_candidate_sections(varied: ParityReport) -> None:
    page = H.render_html(varied)
    a, b, c = varied.candidates
    assert not a.passed and c.passed
    assert (f'<h2 id="cand0">{a.name} <small class="fail">FAIL</small></h2><p>{a.precision}, {a.backend}, '
            f"{a.lowering}: mIoU {a.miou:.2f} (Δ {a.delta_miou:+.3f}), agreement {a.pixel_agreement:.3f} %, "
            f"{a.path}</p>") in page
    assert '<h2 id="cand2">third <small class="pass">pass</small></h2>' in page
    assert (f'<h2 id="cand1">b&lt;&amp;&gt; <small class="fail">FAIL</small></h2><p>{b.precision}, {b.backend}: '
            f"mIoU {b.miou:.2f} (Δ -2.000), agreement {b.pixel_agreement:.3f} %</p>") in page
    names = varied.class_names
    for cand in (b, a):  # b has no drift: its row holds the bars alone
        bars = delta_iou_bars(names, [cand.per_class_delta_iou.get(n) for n in names],
                              [varied.reference["per_class_iou"].get(n) for n in names], f"{cand.name} delta IoU")
        assert '<div class="row"><div><h3>Per-class Δ IoU</h3>' + bars + "</div>" in page
        if cand is b:
            assert bars + "</div></div><h3>Lowest-agreement frames (0)</h3>" in page
    # the confusion heat map: a's drift has one, b (no drift) none; scaled by the labelled pixels per class
    diff = np.asarray(a.drift["confusion_difference"], np.int64)
    heat = confusion_difference_map(names, diff, np.asarray(varied.reference["label_pixels"], np.float64))
    assert (bars + "</div><div><h3>Confusion-matrix difference (candidate − reference)</h3>" + heat
            + '<p class="muted">Rows: label, columns: predicted; % of the label class\'s pixels. Red: the candidate '
            "does worse there (fewer right, more confused), blue: better.</p></div><div><h3>Which classes turn into "
            "which</h3><table>") in page  # the heat map scaled by the labelled pixels per class
    assert page.count("<h3>Confusion-matrix difference") == 2 and page.count("<h3>Which classes turn into") == 2
    no_totals = replace(varied, reference={k: v for k, v in varied.reference.items() if k != "label_pixels"})
    assert confusion_difference_map(names, diff, np.maximum(np.abs(diff).sum(1), 1)) in H.render_html(no_totals)
    assert heat not in H.render_html(no_totals)
    trans = np.asarray(a.drift["transitions"], np.int64)
    changed, total = int(trans.sum() - np.trace(trans)), int(trans.sum())
    assert changed > 0 and total >= 1000
    assert (f'</table><p class="muted">{changed:,} of {total:,} pixels changed class (all pixels, void included).'
            "</p></div></div><h3>Lowest-agreement frames (2)</h3>") in page
    (rows,) = tables(page)["reference class"]  # the third candidate has no transitions
    assert texts(rows) == [["reference class", "candidate class", "pixels", "% of changed"]] + [
        [t["from"], t["to"], f"{t['pixels']:,}", f"{t['share_of_changed']:.1f}"] for t in a.drift["top_transitions"]]
    assert len(rows) > 2
    assert page.count("<p>No pixel changed class.</p>") == 1
    assert ("<h3>Lowest-agreement frames (2)</h3>" in page and "<h3>Lowest-agreement frames (0)</h3><p>No frames "
            "kept.</p>" in page)
    short = replace(varied, worst_frames=varied.worst_frames[:1])  # fewer lists than candidates
    assert H.render_html(short).count("<h3>Lowest-agreement frames (0)</h3><p>No frames kept.</p>") == 2


def test_label_totals_fall_back_to_the_changes() -> None:
    diff = np.array([[-3, 3, 0], [2, -2, 0], [0, 0, 0]])
    r = ParityReport({"label_pixels": [10, 20, 30]}, {}, [], ["a", "b", "c"])
    got = H._label_totals(r, diff)
    assert got.dtype == np.float64 and got.tolist() == [10.0, 20.0, 30.0]
    got = H._label_totals(ParityReport({}, {}, [], ["a", "b", "c"]), diff)
    assert got.tolist() == [6, 4, 1]  # |row| sums, never 0


def test_page_header_verdict_and_footer(varied: ParityReport, frozen: None) -> None:
    page = H.render_html(varied, title="T<1>")
    assert page.startswith('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                           f'<meta http-equiv="Content-Security-Policy" content="{H.CSP}">'
                           '<meta name="viewport" content="width=device-width"><title>T&lt;1&gt;</title><style>')
    assert page.endswith("\n</body></html>\n") and "<body>\n<h1>T&lt;1&gt;</h1>\n<p class=" in page
    assert '<p class="verdict fail">2 of 3 candidates failed</p>' in page
    ref = varied.reference
    assert (f"<p>3 frames, split val; reference {ref['name']} (mIoU {ref['miou']:.2f}, sha256 <code>"
            f"{ref['sha256']}</code>); written 2031-04-05 06:07 UTC.</p>") in page
    assert "<pre>toolkit parity -c a.onnx --data synthetic</pre>" in page
    assert ('<nav>candidates: <a href="#cand0">edges_fp16.onnx</a><a href="#cand1">b&lt;&amp;&gt;</a>'
            '<a href="#cand2">third</a></nav>') in page
    assert ('</nav>\n<h2>Summary</h2>\n<table><tr><th>model</th>' in page
            and '</table>\n<p class="muted">mIoU and Δ in percentage points; agreement: pixels whose class equals the '
            "reference's, over every pixel of every frame.</p>\n<h2>Boundary vs interior</h2>\n<p>A changed pixel "
            "is <em>on a boundary</em> when it lies within 2 pixels of a class boundary of the reference's map; "
            "<em>boundary area</em> is the share of all pixels there, the share the changes would have if they fell "
            "anywhere. The band mIoU is computed on the pixels within 2 pixels of a label boundary only (a trimap), "
            "where lower precision is expected to move first.</p>\n<table><tr><th>candidate</th>" in page
            and "</table>\n<h2>Speed</h2>\n<p>One interleaved run" in page)
    assert page.rstrip().endswith('<p class="muted">Written by <code>toolkit parity --report</code>; every number '
                                  "is also in the <code>--json</code> output.</p>\n</body></html>")
    ok = replace(varied, candidates=[varied.candidates[2]], reference={k: v for k, v in ref.items()
                                                                       if k not in ("sha256", "band_px")},
                 dataset={"images": 7, "root": "/d<x>", "split": "test", "labels": "/l&s"}, command="")
    page = H.render_html(ok)
    assert '</h1>\n<p class="verdict pass">every candidate passed</p>\n<p>7 frames' in page
    assert "<title>Parity report</title>" in page
    assert (f"<p>7 frames of /d&lt;x&gt;, split test; reference {ref['name']} (mIoU {ref['miou']:.2f}, sha256 "
            "<code>-</code>); labels: /l&amp;s; written 2031-04-05 06:07 UTC.</p>") in page
    assert "<pre>(command not recorded)</pre>" in page and "within 3 pixels of a class boundary" in page
    assert "<p>5 frames; reference " in H.render_html(replace(ok, dataset={"images": 5}))


def test_legend_colours(varied: ParityReport) -> None:
    r = replace(varied, class_names=["sky", "r<d"], palette=[[1, 2, 3], [40, 50, 60], [7, 8, 9]])
    sw = '<span class="swatch" style="background:rgb({})"></span>'
    assert H._legend(r) == ("<p>Class colours:" + sw.format("1,2,3") + "sky" + sw.format("40,50,60") + "r&lt;d"
                            + "</p><p>Disagreement map: the reference's classes faded;" + sw.format("0,90,255")
                            + "changed on a reference boundary" + sw.format("230,0,40")
                            + "changed inside an object.</p>")
    assert H._legend(r) in H.render_html(r)


def _decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_data_uri_decodes_to_the_same_rgb_pixels() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (7, 5, 3), np.uint8)
    assert np.array_equal(_decode(H.png_data_uri(rgb)), rgb)
    assert np.array_equal(_decode(H.png_data_uri(rgb[:, ::-1])), rgb[:, ::-1])  # a non-contiguous view
    with pytest.raises(cv2.error):
        H.png_data_uri(np.zeros((0, 0, 3), np.uint8))
    # compressed hard (the page carries every thumbnail): smaller than OpenCV's default level
    maps = H.colorize(np.arange(120 * 160).reshape(120, 160) // 997 % 5, [[9, 9, 9], [200, 0, 0], [0, 200, 0],
                                                                      [0, 0, 200], [90, 90, 0]])
    default = cv2.imencode(".png", cv2.cvtColor(maps, cv2.COLOR_RGB2BGR))[1]
    assert len(base64.b64decode(H.png_data_uri(maps).split(",", 1)[1])) < len(default)


def test_data_uri_says_which_image_failed_to_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv2, "imencode", lambda *a: (False, None))
    with pytest.raises(ValueError, match=r"could not encode a \(2, 3, 3\) image as PNG"):
        H.png_data_uri(np.zeros((2, 3, 3), np.uint8))


def test_colorize_is_the_palette_and_black_outside_it() -> None:
    palette = [[10, 20, 30], [200, 100, 50], [1, 2, 3]]
    m = np.array([[0, 1], [2, 255], [3, 1]], np.int64)
    out = H.colorize(m, palette)
    assert out.dtype == np.uint8 and out.shape == (3, 2, 3)
    assert out.tolist() == [[[10, 20, 30], [200, 100, 50]], [[1, 2, 3], [0, 0, 0]], [[0, 0, 0], [200, 100, 50]]]


def test_disagreement_map_exact_pixels_at_full_size_and_drawn_smaller() -> None:
    palette = [[0, 0, 0], [100, 200, 40]]
    ref = np.zeros((6, 8), np.uint8)
    ref[:, 4:] = 1
    cand = ref.copy()
    cand[0, 4] = 0  # edge
    cand[5, 7] = 0  # interior (band 1)
    m = H.disagreement_map(ref, cand, palette, 1)
    exp = np.where(ref[..., None] == 1, np.array([216, 241, 201], np.uint8), np.uint8(191))  # 255 - (255-c)/4
    exp[0, 4], exp[5, 7] = (0, 90, 255), (230, 0, 40)
    assert m.dtype == np.uint8 and np.array_equal(m, exp)
    assert np.array_equal(H.disagreement_map(ref, cand, palette, 1, width=8), m)  # not narrower: unchanged
    assert np.array_equal(H.disagreement_map(ref, cand, palette, 1, width=9), m)
    # drawn at width 4 (2x2 cells): faded by nearest sampling, each change marks its cell; the interior wins
    # a cell where both fall
    ref = np.zeros((8, 16), np.uint8)
    ref[:, 8:] = 1
    cand = ref.copy()
    cand[1, 8] = 0  # edge only, cell (0, 4)
    cand[4, 15] = 0  # interior only, cell (2, 7)
    cand[6, 8], cand[6, 9] = 0, 0  # edge and interior in one cell (3, 4)
    cand[7, 10] = 0  # interior, cell (3, 5)
    small = H.disagreement_map(ref, cand, palette, 1, width=8)
    full = H.disagreement_map(ref, ref, palette, 1)
    exp = cv2.resize(full, (8, 4), interpolation=cv2.INTER_NEAREST)
    edge = boundary_band(ref, 1)
    assert edge[1, 8] and edge[6, 8] and not edge[6, 9] and not edge[7, 10] and not edge[4, 15]
    exp[0, 4] = (0, 90, 255)
    exp[2, 7] = (230, 0, 40)
    exp[3, 4] = (230, 0, 40)  # edge (6, 8) and interior (6, 9): the interior shows
    exp[3, 5] = (230, 0, 40)
    assert small.shape == (4, 8, 3) and np.array_equal(small, exp)
    # the faded reference is sampled, not blended, when drawn smaller: a boundary inside a cell keeps one class
    ref = np.zeros((4, 16), np.uint8)
    ref[:, 9:] = 1
    small = H.disagreement_map(ref, ref, palette, 1, width=8)
    full = H.disagreement_map(ref, ref, palette, 1)
    assert np.array_equal(small, cv2.resize(full, (8, 2), interpolation=cv2.INTER_NEAREST))
    assert not np.array_equal(small, cv2.resize(full, (8, 2), interpolation=cv2.INTER_LINEAR))
    odd = H.disagreement_map(np.zeros((3, 700), np.uint8), np.zeros((3, 700), np.uint8), palette, 1, width=10)
    assert odd.shape == (1, 10, 3)  # never 0 rows
    odd = H.disagreement_map(np.zeros((50, 100), np.uint8), np.zeros((50, 100), np.uint8), palette, 1, width=33)
    assert odd.shape == (16, 33, 3)  # rounded, not floored (16.5 -> 16 by round-half-even; 50*33/100)
    odd = H.disagreement_map(np.zeros((70, 100), np.uint8), np.zeros((70, 100), np.uint8), palette, 1, width=33)
    assert odd.shape == (23, 33, 3)  # 23.1


def test_thumbnails_bounded_nearest_for_class_maps_area_for_frames() -> None:
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (245, 640, 3), np.uint8)
    near, area = H._thumb(img, True), H._thumb(img, False)
    assert np.array_equal(near, cv2.resize(img, (320, 122), interpolation=cv2.INTER_NEAREST))  # 122.5 -> 122
    assert np.array_equal(area, cv2.resize(img, (320, 122), interpolation=cv2.INTER_AREA))
    assert not np.array_equal(near, area)
    at = img[:, :320]
    assert H._thumb(at, True) is at and H._thumb(at, False) is at  # exactly the width: kept as is
    assert H._thumb(img[:, :321], True).shape == (244, 320, 3)  # 244.2
    assert H._thumb(img[:1], True).shape == (1, 320, 3)
    fig = H._img(img, 'a "b" <c>', nearest=False)
    m = re.fullmatch(r'<figure><img src="([^"]+)" width="320" height="122" alt="a &quot;b&quot; &lt;c&gt;">'
                     r"<figcaption>a &quot;b&quot; &lt;c&gt;</figcaption></figure>", fig)
    assert m and np.array_equal(_decode(m.group(1)), area)
    assert np.array_equal(_decode(re.search(r'src="([^"]+)"', H._img(img, "x")).group(1)), near)


def test_worst_frames_heading_and_images(varied: ParityReport) -> None:
    rng = np.random.default_rng(3)
    h, w = 40, 400
    ref = (np.arange(w)[None, :] // 50 % 2 * np.ones((h, 1), np.int64)).astype(np.uint8)
    cand = ref.copy()
    cand[10:20, 98] = 0  # within 2 pixels of the class boundary at 100, not within 1
    cand[10:20, 101] = 0
    cand[30:35, 120:130] = 0
    cand[0:4, 97] = 0  # within 3 pixels, not 2
    cand[5:9, 95] = 0  # within 5, not 4
    cand[22:26, 96] = 0  # within 4, not 3: every band the page may pass draws its own map
    image = rng.integers(0, 256, (h, w, 3), np.uint8)
    palette = [[10, 20, 30], [200, 100, 50]]
    frames = [WorstFrame(7, "f<7>.png", 87.654, 1234, 617, image, ref, cand),
              WorstFrame(3, "g.png", 99.5, 0, 0, image, ref, ref)]
    out = H._worst(frames, palette, 2)
    heads = re.findall(r"<h4>(.*?)</h4>", out)
    assert heads == ["f&lt;7&gt;.png (frame 7): agreement 87.65 %, 1,234 pixels changed, 50 % of them on a boundary",
                     "g.png (frame 3): agreement 99.50 %, 0 pixels changed, - % of them on a boundary"]
    # nothing else shows: the headings and the captions are the block's whole text
    assert re.sub(r"<[^>]+>", "", out) == "".join(h + "framereferencecandidatedisagreement" for h in heads)
    assert "100 % of them on a boundary" in H._worst([replace(frames[0], changed_on_boundary=1234)], palette, 2)
    figs = re.findall(r'<figure><img src="([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]*)">', out)
    assert [f[3] for f in figs] == ["frame", "reference", "candidate", "disagreement"] * 2
    assert all((f[1], f[2]) == ("320", "32") for f in figs)
    got = [_decode(f[0]) for f in figs[:4]]
    size = (320, 32)
    assert np.array_equal(got[0], cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    assert np.array_equal(got[1], cv2.resize(H.colorize(ref, palette), size, interpolation=cv2.INTER_NEAREST))
    assert np.array_equal(got[2], cv2.resize(H.colorize(cand, palette), size, interpolation=cv2.INTER_NEAREST))
    assert np.array_equal(got[3], H.disagreement_map(ref, cand, palette, 2, 320))
    drawn = [H.disagreement_map(ref, cand, palette, band, 320) for band in (1, 2, 3, 4, 5)]
    assert all(not np.array_equal(drawn[i], drawn[j]) for i in range(5) for j in range(i))
    assert out.count('<div class="frames">') == 2 and out.count("</div>") == 2
    # the band the page passes: the candidate's drift band, else the reference's, else 3
    page = H.render_html(replace(varied, worst_frames=[frames, [], frames], palette=palette))
    blocks = page.split("<h3>Lowest-agreement frames")
    assert H._worst(frames, palette, 2) in blocks[1] and H._worst(frames, palette, 5) in blocks[3]
    cands = [replace(c, drift=None) for c in varied.candidates]
    for reference, band in ((varied.reference, 2), ({k: v for k, v in varied.reference.items() if k != "band_px"},
                                                    3)):
        page = H.render_html(replace(varied, candidates=cands, reference=reference, worst_frames=[frames],
                                     palette=palette))
        assert H._worst(frames, palette, band) in page


def test_write_html_is_the_rendered_page_in_utf8_atomically(varied: ParityReport, frozen: None,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    assert H.write_html(varied, out, title="Ttl") == out
    assert out.read_bytes() == H.render_html(varied, "Ttl").encode("utf-8")
    assert H.write_html(varied, str(out)) == out and "<title>Parity report</title>" in out.read_text("utf-8")
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


def test_f_formats_and_placeholders() -> None:
    assert H._f(1.23456) == "1.23" and H._f(None) == "-" and H._f(None, none="n/a") == "n/a"
    assert H._f(0.5, "+.1f") == "+0.5" and H._f(0.0) == "0.00"


def test_write_html_is_utf8_under_an_ascii_locale(tmp_path: Path) -> None:
    """The page holds Δ, ≤ and − : written in the locale's encoding (no ``encoding=``) it fails under a C
    locale; a subprocess with locale coercion and UTF-8 mode off is the only way to get that locale."""
    import os
    import subprocess
    import sys

    out = tmp_path / "r.html"
    roots = os.pathsep.join(str(Path(m.__file__).resolve().parents[k]) for m, k in ((H, 2), (sys.modules[__name__], 2)))
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONPATH": roots}
    code = ("import sys; from tests.helpers.report import synthetic_report; from toolkit.compare.html import "
            "write_html; assert sys.flags.utf8_mode == 0; write_html(synthetic_report(1, 1), sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=True, timeout=120)
    assert "Δ mIoU" in out.read_bytes().decode("utf-8")
    # the same page here (UTF-8 locale), byte for byte but the time; also what lets mutmut see this test call
    # write_html (it picks the tests per function from the calls it traced in-process; the subprocess is not traced)
    here = tmp_path / "here.html"
    H.write_html(synthetic_report(1, 1), here)

    def undated(page: Path) -> bytes:  # the written time has minute resolution: the two may straddle a minute
        return re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d UTC", b"(time)", page.read_bytes())

    assert undated(here) == undated(out)


def test_transitions_table_alone() -> None:
    assert H._transitions_table({}) == H._transitions_table({"top_transitions": None}) == \
        "<p>No pixel changed class.</p>"
    rows = texts(tables(H._transitions_table({"top_transitions": [
        {"from": "a<", "to": "b", "pixels": 12345, "share_of_changed": 99.95},
        {"from": "b", "to": "a<", "pixels": 7, "share_of_changed": 0.04}]}))["reference class"][0])
    assert rows[1:] == [["a<", "b", "12,345", "100.0"], ["b", "a<", "7", "0.0"]]


def test_a_nan_figure_shows_the_placeholder_like_none(base: ParityReport) -> None:
    """An unlabelled clip has no mIoU: results.py writes null to the JSON, and the page shows "-", not "nan"."""
    a, b = base.candidates
    nan = float("nan")
    page = H.render_html(replace(base, candidates=[a, replace(b, miou=nan, delta_miou=nan)]))
    assert H._f(nan) == "-" and H._f(None) == "-" and H._f(1.234) == "1.23"
    text = re.sub(r"data:image/png;base64,[^\"]*", "", page)  # the images' base64 may spell anything
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
