"""Screenshots of an HTML parity report for docs/figures, through headless Chromium (Debian's `chromium`).

    python tools/report_screenshots.py docs/parity_report.html --width 1400 --height 9000 \\
        --crop summary:0:1205 --crop int8_cpu:5730:6420 --out docs/figures/parity_report

renders the page once at WIDTHxHEIGHT and writes one PNG per --crop NAME:Y0:Y1 (page pixels), as
OUT_NAME.png. Prints any console line Chromium logged for the page (there should be none).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2


def render(page: Path, width: int, height: int, shot: Path) -> list[str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                               f"--screenshot={shot}", "--enable-logging=stderr", "--v=0", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 or not shot.is_file():
        sys.exit(f"chromium failed: {proc.stderr[-1000:]}")
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page", type=Path)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=5000)
    ap.add_argument("--crop", action="append", default=[], help="NAME:Y0:Y1 in page pixels")
    ap.add_argument("--out", type=Path, required=True, help="output prefix; NAME.png is appended")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "page.png"
        for line in render(args.page, args.width, args.height, shot):
            print("console:", line)
        img = cv2.imread(str(shot))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for spec in args.crop or [f"page:0:{args.height}"]:
        name, y0, y1 = spec.split(":")
        path = args.out.parent / f"{args.out.name}_{name}.png"
        cv2.imwrite(str(path), img[int(y0):int(y1)], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
