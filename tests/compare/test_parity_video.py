"""``toolkit parity --video``: a clip instead of a split, with the temporal object per candidate in --json and
the flicker section in the HTML report; labels found beside a CamVid-layout folder, none for a video file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.models import tiny_checkpoint, tiny_onnx
from toolkit.cli.app import app
from toolkit.video.clip import VideoClip

TEMPORAL_KEYS = ("flip_rate", "reference_flip_rate", "excess_flip_rate", "boundary_flip_rate",
                 "interior_flip_rate", "excess_boundary_flip_rate", "excess_interior_flip_rate",
                 "compensated_flip_rate", "reference_compensated_flip_rate", "excess_compensated_flip_rate")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return tiny_checkpoint(tmp_path_factory), tiny_onnx(tmp_path_factory, "mask")


def test_parity_video_folder_with_labels(models: tuple[Path, Path], synthetic_dir: Path, tmp_path: Path) -> None:
    ckpt, onnx_model = models
    js, html = tmp_path / "t.json", tmp_path / "t.html"
    result = CliRunner().invoke(app, ["parity", "--reference", str(ckpt), "-c", str(onnx_model), "--video",
                                      str(synthetic_dir / "val"), "--json", str(js), "--report", str(html)])
    assert result.exit_code == 0, result.output
    assert "flicker over 3 frame pairs" in result.output
    data = json.loads(js.read_text())
    assert data["dataset"]["labelled_frames"] == 4 and data["dataset"]["labels"].endswith("valannot")
    t = data["candidates"][0]["temporal"]
    for key in TEMPORAL_KEYS:  # the tiny random model's maps are all boundary: its interior may be empty
        assert key in t and (t[key] is not None or "interior" in key), key
    assert t["frames"] == 4 and t["pairs"] == 3
    # the ONNX export of the reference itself: the same class maps, so no excess anywhere
    assert t["excess_flip_rate"] == pytest.approx(0, abs=1e-9)
    assert t["flip_rate"] == pytest.approx(t["reference_flip_rate"])
    assert len(t["per_frame_miou"]) == 4 and len(t["per_pair"]["flip_rate"]) == 3
    page = html.read_text(encoding="utf-8")
    assert "Flicker over time" in page and 'aria-label="flip rate per frame pair"' in page


def test_parity_video_file_without_labels(models: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, onnx_model = models
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 15, (96, 64))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 120, 3), np.uint8)
    for i in range(5):
        writer.write(np.ascontiguousarray(base[:, 2 * i:2 * i + 96]))
    writer.release()
    js = tmp_path / "t.json"
    result = CliRunner().invoke(app, ["parity", "--reference", str(ckpt), "-c", str(onnx_model), "--video",
                                      str(clip), "--json", str(js)])
    assert result.exit_code == 0, result.output
    data = json.loads(js.read_text())
    c = data["candidates"][0]
    assert c["miou"] is None and c["temporal"]["per_frame_miou"] is None  # no labels: no mIoU, valid JSON
    assert c["temporal"]["pairs"] == 4 and data["dataset"]["labelled_frames"] == 0


@pytest.mark.parametrize("extra", [[], ["--data", "x", "--video", "y"]])
def test_parity_needs_data_or_video(models: tuple[Path, Path], extra: list[str]) -> None:
    result = CliRunner().invoke(app, ["parity", "-c", str(models[1]), *extra])
    assert result.exit_code == 2
    assert "--data" in result.output and "--video" in result.output


def test_clip_reads_in_order(synthetic_dir: Path) -> None:
    clip = VideoClip(str(synthetic_dir / "val"), synthetic_dir / "valannot")
    assert len(clip) == 4
    clip.load(0)
    with pytest.raises(Exception, match="in order"):
        clip.load(2)


def test_clip_refuses_a_gap(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
    (tmp_path / "f1.png").write_bytes(b"not a png")
    clip = VideoClip(str(tmp_path))
    assert len(clip) == 3 and clip.load(0)[1].max() == 255  # no labels: all ignore
    with pytest.raises(Exception, match="frame 1 is unreadable.*consecutive pairs"):
        clip.load(1)
