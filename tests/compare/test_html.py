"""The HTML parity report's content, without a browser: self-contained, every image decodes, each section
is there and the made-up candidates' known changes show up where they should."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.report import synthetic_report
from toolkit.compare import ParityReport
from toolkit.compare.html import colorize, disagreement_map, render_html, write_html


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def report() -> ParityReport:
    return synthetic_report()


def test_report_is_self_contained(report: ParityReport) -> None:
    page = render_html(report)
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert "@import" not in page and "url(" not in page
    for tag, attrs in parser.tags:
        for key in ("src", "href"):
            v = attrs.get(key)
            assert v is None or v.startswith(("data:image/png;base64,", "#")), (tag, key, v[:40])


def test_every_image_decodes_and_worst_frames_are_bounded(report: ParityReport) -> None:
    srcs = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', render_html(report))
    assert len(srcs) == 2 * 2 * 4  # 2 candidates x 2 worst frames x (frame, reference, candidate, disagreement)
    for data, w, h in srcs:
        img = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape[:2] == (int(h), int(w))


def test_sections_and_numbers(report: ParityReport) -> None:
    page = render_html(report)
    for text in ("Summary", "Boundary vs interior", "Speed", "Per-class Δ IoU", "Confusion-matrix difference",
                 "Which classes turn into which", "Lowest-agreement frames", "toolkit parity -c a.onnx",
                 "ab" * 8, "cd" * 32):
        assert text in page, text
    assert page.count("<svg") == 2 * 2  # bars + heat map per candidate
    edges, blob = report.candidates
    assert edges.drift["boundary_share"] == 100.0 and blob.drift["boundary_share"] < 50
    assert blob.drift["top_transitions"][0]["to"] == "car"
    assert f"{blob.drift['boundary_share']:.1f}" in page


def test_disagreement_map_marks_edge_and_interior_changes() -> None:
    palette = [[0, 0, 0], [255, 255, 255]]
    ref = np.zeros((10, 10), np.uint8)
    ref[:, 5:] = 1
    cand = ref.copy()
    cand[3, 5] = 0  # on the boundary
    cand[3, 9] = 0  # inside
    m = disagreement_map(ref, cand, palette, 1)
    assert tuple(m[3, 5]) == (0, 90, 255) and tuple(m[3, 9]) == (230, 0, 40)
    assert tuple(m[0, 0]) == (191, 191, 191) and tuple(m[0, 9]) == (255, 255, 255)  # the reference, faded
    assert tuple(colorize(np.array([[255]], np.uint8), palette)[0, 0]) == (0, 0, 0)  # ignore label: black
    big_ref = np.zeros((90, 120), np.uint8)
    big_cand = big_ref.copy()
    big_cand[45, 61] = 1  # one isolated change, inside an object
    small = disagreement_map(big_ref, big_cand, palette, 1, width=40)
    assert small.shape == (30, 40, 3) and (small == (230, 0, 40)).all(-1).sum() == 1  # not lost by sampling


def test_write_is_atomic_and_complete(report: ParityReport, tmp_path: Path) -> None:
    path = write_html(report, tmp_path / "sub" / "r.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert [p.name for p in path.parent.iterdir()] == ["r.html"]  # no temp file left beside it


def test_speed_table_warns_when_the_spread_says_the_machine_was_busy(report: ParityReport) -> None:
    """The report's speed table printed 10x spreads without a word (issue 25): a row past bench's thresholds
    (p90/p50 or p50/min > 1.5) gets bench's warning line, a steady row none."""
    steady = {"name": "ref", "precision": "fp32", "shape": [1, 3, 8, 8], "iterations": 5, "ratio": None,
              "throughput_fps": 10.0, "latency_ms": {"p50": 100.0, "p90": 110.0, "p99": 120.0, "min": 95.0}}
    busy = {**steady, "name": "int8 busy", "ratio": 0.5,
            "latency_ms": {"p50": 200.0, "p90": 2000.0, "p99": 2100.0, "min": 20.0}}
    from dataclasses import replace

    assert 'class="warn"' not in render_html(replace(report, speed=[steady]))
    page = render_html(replace(report, speed=[steady, busy]))  # the module's report is shared: left as it was
    warnings = re.findall(r'<p class="warn">([^<]*)</p>', page)
    assert len(warnings) == 1 and warnings[0].startswith("warning: int8 busy: p90/p50 10.0, p50/min 10.0")
