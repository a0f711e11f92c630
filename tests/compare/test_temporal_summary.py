"""The temporal summary on small hand-made clips whose every rate is known: a reference whose boundary moves one
column a frame, two candidates that flicker by known sets, a known optical flow in place of Farnebäck (which
test_temporal.py checks on its own), and the raw counters and the warp at their edges (written for the mutation
run over toolkit/compare/temporal.py: docs/MUTATION.md)."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.compare import temporal
from toolkit.compare.drift import DriftOptions
from toolkit.compare.temporal import FlipCounter, TemporalAccumulator, _Counts, warp_previous

H, W, FRAMES = 12, 16, 5
VOID = 3  # the ignore label of these clips: not 255, so a confusion matrix left at its default ignore fails
RATES = [f"{c}{p}flip_rate" for c in ("", "compensated_") for p in ("", "boundary_", "interior_")]
SUMMARY_KEYS = {"frames", "pairs", "band_px", "flow", "boundary_area", "compensated_valid_share", "per_pair",
                "per_frame_miou", "reference_per_frame_miou", "largest_excess_pair",
                *RATES, *(f"reference_{k}" for k in RATES), *(f"excess_{k}" for k in RATES)}


def ref_map(t: int) -> np.ndarray:
    """Class 0 left of column 6 + t, class 1 from there: the boundary moves right one column a frame (int64, as an
    argmax gives it)."""
    m = np.ones((H, W), np.int64)
    m[:, : 6 + t] = 0
    return m


def flicker(t: int, cells: dict[int, list[tuple[int, int]]]) -> np.ndarray:
    """The reference's map with the pixels ``cells[t]`` turned to class 2 (right edge, far from the boundary)."""
    m = ref_map(t)
    for y, x in cells.get(t, []):
        m[y, x] = 2
    return m


S1 = [(y, x) for y in (0, 1) for x in (14, 15)]  # 4 pixels
S1_MORE = S1 + [(y, x) for y in (2, 3) for x in (14, 15)]  # 8 pixels
CAND1 = {1: S1, 3: S1_MORE}  # pairs (0,1) (1,2): 4 flips each, (2,3) (3,4): 8 each
# pixel (5, 15) wrong in every frame (so the pair's first map is not the reference's), (6, 15) in frame 3 only:
# pairs (2,3) (3,4): 1 flip each, under a percentage point
CAND2 = {t: [(5, 15)] + ([(6, 15)] if t == 3 else []) for t in range(FRAMES)}


def zero_flow(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    return np.zeros((*current.shape[:2], 2), np.float32)


def from_the_left(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Every pixel came from its left neighbour: the content moved right by one pixel."""
    f = np.zeros((*current.shape[:2], 2), np.float32)
    f[..., 0] = -1.0
    return f


def clip(monkeypatch: pytest.MonkeyPatch, flow=zero_flow) -> tuple[TemporalAccumulator, list[np.ndarray]]:
    monkeypatch.setattr(temporal, "dense_flow", flow)
    acc = TemporalAccumulator(3, VOID, candidates=2, band_px=1)
    images = []
    for t in range(FRAMES):
        label = ref_map(t)
        label[10:, :2] = VOID
        images.append(np.full((H, W, 3), 10 * t, np.uint8))
        acc.frame(t, f"f{t}", images[-1], label, [ref_map(t), flicker(t, CAND1), flicker(t, CAND2)])
    return acc, images


def pct(part: float, whole: float) -> float:
    return 100.0 * part / whole


def test_rates_split_on_the_band_of_either_frames_reference_and_excess_is_over_the_reference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Band 1 around the boundary at columns b - 1 | b, b - 2 | b - 1 in the pair's two frames: 3 columns
    (36 pixels) a pair, 156 inside. The reference flips one column (12 pixels) a pair, all in the band."""
    acc, _ = clip(monkeypatch)
    c1, c2 = acc.summaries()
    assert set(c1) == set(c2) == SUMMARY_KEYS
    assert (c1["frames"], c1["pairs"], c1["band_px"], c1["flow"]) == (FRAMES, FRAMES - 1, 1, "farneback")
    pixels, band, inside = 4 * H * W, 4 * 36, 4 * 156
    assert c1["boundary_area"] == pytest.approx(pct(band, pixels))
    assert c1["reference_flip_rate"] == pytest.approx(pct(48, pixels))
    assert c1["reference_boundary_flip_rate"] == pytest.approx(pct(48, band))
    assert c1["reference_interior_flip_rate"] == 0.0
    assert c1["flip_rate"] == pytest.approx(pct(48 + 24, pixels))
    assert c1["boundary_flip_rate"] == pytest.approx(pct(48, band))
    assert c1["interior_flip_rate"] == pytest.approx(pct(24, inside))
    assert c1["excess_flip_rate"] == pytest.approx(pct(24, pixels))
    assert c1["excess_interior_flip_rate"] == pytest.approx(pct(24, inside))
    assert c1["excess_boundary_flip_rate"] == pytest.approx(0.0)
    assert c2["interior_flip_rate"] == pytest.approx(pct(2, inside))
    assert c2["excess_flip_rate"] == pytest.approx(pct(2, pixels))
    # the frames say nothing moved: compensation changes nothing, on every region and for every model
    assert c1["compensated_valid_share"] == 100.0
    for s in (c1, c2):
        for key in ("flip_rate", "boundary_flip_rate", "interior_flip_rate"):
            for who in ("", "reference_", "excess_"):
                assert s[f"{who}compensated_{key}"] == pytest.approx(s[f"{who}{key}"]), (who, key)


def test_per_pair_rates_and_per_frame_miou_belong_to_each_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    acc, _ = clip(monkeypatch)
    c1, c2 = acc.summaries()
    ref = pct(12, H * W)
    for s, flips in ((c1, [4, 4, 8, 8]), (c2, [0, 0, 1, 1])):
        expected = [ref + pct(n, H * W) for n in flips]
        assert s["per_pair"] == {"index": [1, 2, 3, 4], "flip_rate": pytest.approx(expected),
                                 "reference_flip_rate": pytest.approx([ref] * 4),
                                 "compensated_flip_rate": pytest.approx(expected),
                                 "reference_compensated_flip_rate": pytest.approx([ref] * 4)}
    assert c1["reference_per_frame_miou"] == c2["reference_per_frame_miou"] == [100.0] * FRAMES  # void left out
    for s, wrong in ((c1, (1, 3)), (c2, tuple(range(FRAMES)))):
        assert [t for t, v in enumerate(s["per_frame_miou"]) if v < 100.0] == list(wrong)
        assert all(v == 100.0 for t, v in enumerate(s["per_frame_miou"]) if t not in wrong)


def test_the_largest_excess_pair_is_the_earliest_of_the_largest_even_under_a_point(
        monkeypatch: pytest.MonkeyPatch) -> None:
    acc, images = clip(monkeypatch)
    c1, c2 = acc.summaries()
    assert c1["largest_excess_pair"] == {"index": 3, "frames": ["f2", "f3"],
                                         "excess_flip_rate": pytest.approx(pct(8, H * W))}
    assert c2["largest_excess_pair"] == {"index": 3, "frames": ["f2", "f3"],
                                         "excess_flip_rate": pytest.approx(pct(1, H * W))}
    for pair, cells in zip(acc.flicker_pairs(), (CAND1, CAND2), strict=True):
        assert pair is not None and pair.index == 3 and pair.names == ("f2", "f3")
        for got, t in zip(pair.images, (2, 3), strict=True):
            assert (got == images[t]).all() and got is not images[t]  # a copy: the caller reuses its buffers
        for got, t in zip(pair.reference, (2, 3), strict=True):
            assert got.dtype == np.uint8 and (got == ref_map(t)).all()  # kept as uint8, like drift's worst frames
        for got, t in zip(pair.candidate, (2, 3), strict=True):
            assert got.dtype == np.uint8 and (got == flicker(t, cells)).all()


def test_a_known_flow_compensates_a_moving_boundary_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The boundary moves right one column a frame, and the flow says every pixel came from its left neighbour:
    the warped previous map is the current one wherever its source is inside the frame (all but column 0)."""
    monkeypatch.setattr(temporal, "dense_flow", from_the_left)
    acc = TemporalAccumulator(3, None, candidates=1, band_px=1)
    for t in range(FRAMES):
        acc.frame(t, f"f{t}", np.zeros((H, W, 3), np.uint8), None, [ref_map(t), ref_map(t)])
    (s,) = acc.summaries()
    assert s["reference_flip_rate"] == pytest.approx(pct(12, H * W))
    assert s["compensated_valid_share"] == pytest.approx(pct(W - 1, W))
    for key in ("compensated_flip_rate", "compensated_boundary_flip_rate", "compensated_interior_flip_rate"):
        assert s["reference_" + key] == 0.0 and s[key] == 0.0 and s["excess_" + key] == 0.0
    assert s["per_pair"]["compensated_flip_rate"] == [0.0] * (FRAMES - 1)
    assert s["per_frame_miou"] is None and s["reference_per_frame_miou"] is None  # no labels


def test_without_flow_every_compensated_figure_is_none() -> None:
    acc = TemporalAccumulator(3, None, candidates=1, band_px=1, flow=False)
    for t in range(3):
        acc.frame(t, f"f{t}", np.zeros((H, W, 3), np.uint8), None, [ref_map(t), flicker(t, CAND1)])
    (s,) = acc.summaries()
    assert s["flow"] is None and s["compensated_valid_share"] is None
    for key in RATES[3:]:
        assert s[key] is None and s["reference_" + key] is None and s["excess_" + key] is None, key
    assert s["per_pair"]["compensated_flip_rate"] is None and s["per_pair"]["reference_compensated_flip_rate"] is None
    assert s["excess_flip_rate"] == pytest.approx(pct(8, 2 * H * W))
    assert set(acc.reference_summary()) == {"frames", "pairs", "band_px", *RATES[:3]}
    assert acc.reference_summary()["frames"] == 3 and acc.reference_summary()["band_px"] == 1
    with pytest.raises(ValueError, match=r"^1 class maps, expected 2 \(reference first\)$"):
        acc.frame(3, "f3", np.zeros((H, W, 3), np.uint8), None, [ref_map(3)])


def test_the_default_band_is_drifts_and_the_flip_counter_passes_its_own_and_counts_every_gap() -> None:
    assert TemporalAccumulator(3, None, 1).band_px == FlipCounter().acc.band_px == DriftOptions().band_px
    fc = FlipCounter(band_px=1)
    for index in (0, 1, 3, 4, 6):  # frames 2 and 5 missing: two gaps
        fc.add(index, ref_map(index))
    s = fc.summary()
    assert set(s) == {"frames", "pairs", "band_px", *RATES[:3], "gaps"}
    assert (s["frames"], s["pairs"], s["gaps"], s["band_px"]) == (5, 2, 2, 1)
    assert s["flip_rate"] == pytest.approx(pct(24, 2 * H * W))
    assert s["boundary_flip_rate"] == pytest.approx(pct(24, 2 * 36))  # band 1: 3 columns a pair


def test_counts_split_raw_and_compensated_flips_by_region() -> None:
    """The counters on their own, with masks chosen so every region's count differs: flips F, band B, compensated
    flips C, valid V, compensated band CB (4 x 4)."""
    rng = np.random.default_rng(7)
    f, b, c, v, cb = (rng.random((4, 4)) < p for p in (0.5, 0.4, 0.5, 0.7, 0.4))
    counts = _Counts()
    counts.add(f, b, (c, v, cb))
    none = np.zeros((4, 4), bool)
    counts.add(none, b, (none, v, cb))  # a pair without compensated flips: 0.0, not None
    counts.add(none, b, (none, none, cb))  # nothing valid: the pair's compensated rate is taken as 0.0

    def n(m: np.ndarray) -> int:
        return int(m.sum())

    assert counts.rates() == pytest.approx({
        "flip_rate": pct(n(f), 3 * 16), "boundary_flip_rate": pct(n(f & b), 3 * n(b)),
        "interior_flip_rate": pct(n(f & ~b), 3 * n(~b)),
        "compensated_flip_rate": pct(n(c & v), 2 * n(v)),
        "compensated_boundary_flip_rate": pct(n(c & v & cb), 2 * n(v & cb)),
        "compensated_interior_flip_rate": pct(n(c & v & ~cb), 2 * n(v & ~cb))})
    assert counts.per_pair == pytest.approx([pct(n(f), 16), 0.0, 0.0])
    assert counts.comp_per_pair == pytest.approx([pct(n(c & v), n(v)), 0.0, 0.0])
    assert n(c & ~v) > 0 and n(v & cb) != n(v | cb)  # the masks tell the regions apart


def test_warp_previous_at_half_pixel_edges_and_along_y() -> None:
    """A source is inside when it lies less than half a pixel beyond the outer pixel centres (-0.5 < x < w - 0.5).
    Every pixel marked valid holds a class of the previous map; a source outside reads as 255 (void)."""
    prev = np.arange(12, dtype=np.uint8).reshape(3, 4)

    def warp(dx: float, dy: float) -> tuple[np.ndarray, np.ndarray]:
        flow = np.zeros((3, 4, 2), np.float32)
        flow[..., 0], flow[..., 1] = dx, dy
        warped, valid = warp_previous(prev, flow)
        assert (warped[valid] != 255).all()
        return warped, valid

    warped, valid = warp(0.0, -1.0)  # came from the row above
    assert not valid[0].any() and valid[1:].all()
    assert (warped[1:] == prev[:-1]).all() and (warped[0] == 255).all()
    for dx, dy, inside in ((0.4, 0.4, np.ones((3, 4), bool)), (-0.4, -0.4, np.ones((3, 4), bool))):
        warped, valid = warp(dx, dy)
        assert (valid == inside).all() and (warped == prev).all()
    _, valid = warp(0.6, 0.0)
    assert not valid[:, 3].any() and valid[:, :3].all()
    _, valid = warp(0.0, -0.6)
    assert not valid[0].any() and valid[1:].all()
    # exactly half a pixel out: left out (x = 3.5 is sampled from column 4, outside: a flip against void would count;
    # y = 2.5 rounds half to even, to row 2, but the bound is the same on both axes)
    _, valid = warp(0.5, 0.5)
    assert not valid[:, 3].any() and not valid[2].any() and valid[:2, :3].all()
