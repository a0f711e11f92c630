"""Temporal flip rate on synthetic video with known motion (toolkit.compare.temporal)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.compare.temporal import FlipCounter, TemporalAccumulator, dense_flow, warp_previous

H, W = 96, 128


def _texture(seed: int = 0, h: int = H, w: int = W) -> np.ndarray:
    """A smooth random texture (flow needs structure): low-frequency noise, RGB uint8."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    return cv2.resize(small, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC)[:h, :w].copy()


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A textured frame and a class map of three regions (two vertical edges, one disc)."""
    yy, xx = np.mgrid[:H, :W]
    cls = np.zeros((H, W), np.uint8)
    cls[:, W // 3:] = 1
    cls[(yy - H // 2) ** 2 + (xx - 2 * W // 3) ** 2 < 15 ** 2] = 2
    return _texture(), cls


def test_static_scene_has_zero_flip_rate() -> None:
    image, cls = _scene()
    acc = TemporalAccumulator(3, None, candidates=1)
    for i in range(5):
        acc.frame(i, f"f{i}", image, None, [cls, cls])
    (t,) = acc.summaries()
    assert t["pairs"] == 4
    for key in ("flip_rate", "reference_flip_rate", "excess_flip_rate", "boundary_flip_rate", "interior_flip_rate",
                "compensated_flip_rate", "excess_compensated_flip_rate"):
        assert t[key] == 0.0, key
    assert t["largest_excess_pair"] is None
    assert t["per_frame_miou"] is None  # no labels


def test_alternating_pixel_set_gives_exactly_that_excess() -> None:
    """The reference is steady; the candidate flips a known set S on every other frame, so every pair of
    consecutive frames differs on exactly S: excess = |S| / pixels, all of it inside objects here."""
    image, cls = _scene()
    flipped = cls.copy()
    s = np.zeros_like(cls, bool)
    s[5:15, 5:25] = True  # 200 pixels far from every boundary
    flipped[s] = 1
    acc = TemporalAccumulator(3, None, candidates=1, band_px=2)
    for i in range(7):
        acc.frame(i, f"f{i}", image, None, [cls, flipped if i % 2 else cls])
    (t,) = acc.summaries()
    expected = 100.0 * s.sum() / s.size
    assert t["reference_flip_rate"] == 0.0
    assert t["excess_flip_rate"] == pytest.approx(expected, abs=1e-12)
    assert t["per_pair"]["flip_rate"] == pytest.approx([expected] * 6, abs=1e-12)
    band_pixels = t["boundary_area"] / 100 * s.size
    assert t["boundary_flip_rate"] == 0.0
    assert t["interior_flip_rate"] == pytest.approx(100.0 * s.sum() / (s.size - band_pixels), abs=1e-9)
    # the scene is static, so the flow is zero and compensation changes nothing
    assert t["excess_compensated_flip_rate"] == pytest.approx(expected, abs=1e-9)
    assert t["largest_excess_pair"]["excess_flip_rate"] == pytest.approx(expected)
    assert acc.flicker_pairs()[0] is not None


def test_labels_give_per_frame_miou() -> None:
    image, cls = _scene()
    acc = TemporalAccumulator(3, 255, candidates=1)
    wrong = cls.copy()
    wrong[cls == 2] = 1  # the disc lost: IoU of class 2 is 0
    for i in range(3):
        acc.frame(i, f"f{i}", image, cls, [cls, wrong])
    (t,) = acc.summaries()
    assert t["reference_per_frame_miou"] == [100.0] * 3
    assert all(v is not None and v < 100.0 for v in t["per_frame_miou"])


def test_flow_compensation_cancels_a_translated_scene() -> None:
    """Texture and classes shift right by 3 px per frame. Every model's raw rate is what the motion sweeps:
    d = 3 px times the boundaries' vertical extent (the edge: H; the disc of radius r: its left and right
    halves, 2r each), d (H + 4r) pixels a pair. After warping with the frames' own flow it should be near zero.

    Tolerance: a pixel whose flow is off by less than 0.5 px still samples its own source pixel (nearest), so
    a compensated flip needs a flow error of at least half a pixel with a class boundary within that error.
    If the flow were that wrong everywhere along the boundaries, they would flip once across (H + 4r) pixels:
    1 px of the 3 px motion, a third of the raw rate. That is the bound asserted first; Farnebäck is far
    better than that on textured frames except near the disoccluded left strip, so we also assert a tenth."""
    big = _texture(1, H, W + 40)
    yy, xx = np.mgrid[:H, : W + 40]
    big_cls = np.zeros((H, W + 40), np.uint8)
    big_cls[:, 50:] = 1
    big_cls[(yy - H // 2) ** 2 + (xx - 95) ** 2 < 15 ** 2] = 2
    acc = TemporalAccumulator(3, None, candidates=1)
    for i in range(6):
        x0 = 30 - 3 * i  # the window moves left over the scene: the content moves right by 3 px
        frame, cls = big[:, x0:x0 + W], big_cls[:, x0:x0 + W]
        acc.frame(i, f"f{i}", np.ascontiguousarray(frame), None, [cls, cls])
    (t,) = acc.summaries()
    raw, comp = t["reference_flip_rate"], t["reference_compensated_flip_rate"]
    # rel 0.05: the hand count takes the disc's edge as 4 x radius columns per 3 px step; the rasterised disc differs
    # by a few pixels
    assert raw == pytest.approx(100 * 3 * (H + 4 * 15) / (H * W), rel=0.05)
    assert comp < raw / 3
    assert comp < raw / 10
    assert t["excess_flip_rate"] == 0.0 and t["excess_compensated_flip_rate"] == 0.0
    assert 90.0 < t["compensated_valid_share"] <= 100.0


def test_warp_previous_marks_sources_outside_the_frame() -> None:
    prev = np.arange(12, dtype=np.uint8).reshape(3, 4)
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = -1.0  # every pixel came from one to its left
    warped, valid = warp_previous(prev, flow)
    assert not valid[:, 0].any() and valid[:, 1:].all()
    assert (warped[:, 1:] == prev[:, :-1]).all()


def test_dense_flow_finds_a_known_shift() -> None:
    big = _texture(2, H, W + 10)
    prev, cur = big[:, 5:5 + W], big[:, 3:3 + W]  # content moved right by 2 px
    flow = dense_flow(np.ascontiguousarray(cur), np.ascontiguousarray(prev))
    inner = flow[20:-20, 20:-20]
    # abs 0.25: a quarter pixel, Farneback's sub-pixel accuracy on smooth content; a sign or axis error is off by 2-4
    # px
    assert np.median(inner[..., 0]) == pytest.approx(-2.0, abs=0.25)
    assert np.median(np.abs(inner[..., 1])) < 0.25


def test_flip_counter_skips_gaps() -> None:
    a = np.zeros((4, 4), np.uint8)
    b = a.copy()
    b[0, 0] = 1
    fc = FlipCounter(band_px=1)
    for index, m in ((0, a), (1, b), (3, a), (4, a)):  # frame 2 missing: the 1 -> 3 pair is not counted
        fc.add(index, m)
    s = fc.summary()
    assert s["pairs"] == 2 and s["gaps"] == 1
    assert s["flip_rate"] == pytest.approx(100 * 1 / 32)
    assert "compensated_flip_rate" not in s
