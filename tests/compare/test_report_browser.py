"""The HTML parity report in a real browser: headless Chromium renders it offline, the screenshot is not blank
(charts and embedded images drawn) and the page logs nothing to the console.

Chromium writes a page's console messages to stderr with ``--enable-logging=stderr`` (``...:CONSOLE...``
lines); the report's Content-Security-Policy makes any load from outside the file such a message. The
control page proves the capture works. Skips, saying why, where Chromium is not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.report import synthetic_report
from toolkit.compare.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install "
                                "chromium); the report's browser test needs it")
WINDOW = (1400, 2600)


def screenshot(page: Path, shot: Path, profile: Path) -> list[str]:
    """Render ``page`` headless into ``shot``; returns the console lines Chromium logged for it."""
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", "--enable-logging=stderr", "--v=0",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def colour_pixels(img_bgr: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> int:
    return int((np.abs(img_bgr.astype(np.int16) - np.array(rgb[::-1], np.int16)) <= tol).all(-1).sum())


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(synthetic_report()), encoding="utf-8")
    return path


def test_report_renders_without_console_errors(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    console = screenshot(page, shot, tmp_path / "profile")
    assert console == []
    img = cv2.imread(str(shot))
    assert img.shape[:2] == (WINDOW[1], WINDOW[0])
    not_white = (img < 240).any(-1).mean()
    assert 0.03 < not_white < 0.9 and img.std() > 20  # a page with content, not a blank or black screen
    assert colour_pixels(img, (220, 38, 38)) > 200  # red Δ IoU bars and heat-map cells: the SVG was drawn
    assert colour_pixels(img, (64, 0, 128)) > 200  # the 'car' class colour: embedded class-map PNGs decoded
    assert colour_pixels(img, (0, 90, 255)) > 20  # boundary changes in the disagreement maps


def test_console_capture_sees_an_external_load(page: Path, tmp_path: Path) -> None:
    """Control: the same report with one external image must log a console error (blocked by its CSP)."""
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text(encoding="utf-8").replace("</body>", '<img src="https://example.com/x.png"></body>'),
                   encoding="utf-8")
    console = screenshot(bad, tmp_path / "bad.png", tmp_path / "profile")
    assert any("example.com" in line for line in console), console
