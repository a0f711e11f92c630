"""Where-it-changed accounting on small hand-made class maps: boundary band, boundary share, trimap mIoU,
confusion difference, transitions and the bounded worst-frame heap."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.drift import halves, run
from toolkit.compare.drift import WorstFrame, WorstFrames, boundary_band


def test_band_is_r_pixels_each_side_of_a_boundary() -> None:
    band = boundary_band(halves(), 2)
    assert band[:, 3:7].all() and not band[:, :3].any() and not band[:, 7:].any()
    assert boundary_band(halves(), 1)[:, 4:6].all() and boundary_band(halves(), 1).sum() == 2 * 8


def test_band_of_one_class_is_empty_and_border_is_no_boundary() -> None:
    assert not boundary_band(np.full((6, 6), 2), 3).any()
    with pytest.raises(ValueError):
        boundary_band(halves(), 0)


def test_boundary_share_separates_edge_from_interior_changes() -> None:
    ref = halves()
    edge, inside = ref.copy(), ref.copy()
    edge[2, 5] = 0  # next to the boundary (band 1: columns 4-5)
    inside[2, 9] = 0  # far inside class 1
    both = edge.copy()
    both[2, 9] = 0
    s_edge, _ = run(ref, ref, [edge])
    s_inside, _ = run(ref, ref, [inside])
    s_both, _ = run(ref, ref, [both])
    assert s_edge["boundary_share"] == 100.0 and s_inside["boundary_share"] == 0.0
    assert s_both["boundary_share"] == 50.0 and s_both["changed_pixels"] == 2
    assert s_edge["band_area"] == pytest.approx(100 * 16 / 80)
    assert run(ref, ref, [ref])[0]["boundary_share"] is None  # nothing changed: no share to speak of


def test_trimap_miou_counts_only_band_pixels() -> None:
    label = halves()
    label[0, 0] = 255  # void: never counted
    pred = label.copy()
    pred[label == 255] = 0
    pred[5, 8] = 0  # wrong, but inside class 1, outside the band
    summary, _ = run(label, label.copy().clip(0, 1), [pred])
    assert summary["miou_band"] == 100.0 and summary["reference_miou_band"] == 100.0
    assert summary["delta_miou_band"] == 0.0
    # band of radius 1 around the 0|1 boundary and around the void pixel (its 3 neighbours plus itself, void)
    assert summary["band_label_pixels"] == 16 + 3


def test_confusion_difference_and_transitions() -> None:
    label = np.zeros((4, 5), np.int64)
    ref = label.copy()
    cand = label.copy()
    cand[0, :5] = 1  # five pixels of class a turn into b
    cand[1, 0] = 2
    summary, _ = run(label, ref, [cand])
    diff = np.array(summary["confusion_difference"])
    assert diff[0, 0] == -6 and diff[0, 1] == 5 and diff[0, 2] == 1 and diff.sum() == 0
    trans = np.array(summary["transitions"])
    assert trans[0, 0] == 14 and trans[0, 1] == 5 and trans[0, 2] == 1 and trans.sum() == 20
    first, second = summary["top_transitions"]
    assert (first["from"], first["to"], first["pixels"]) == ("a", "b", 5)
    assert first["share_of_changed"] == pytest.approx(100 * 5 / 6) and second["to"] == "c"


def frame(i: int, agreement: float) -> WorstFrame:
    z = np.zeros((2, 2), np.uint8)
    return WorstFrame(i, f"f{i}", agreement, 0, 0, z, z, z)


def test_worst_frame_heap_stays_bounded_and_keeps_the_lowest() -> None:
    rng = np.random.default_rng(0)
    agreements = rng.uniform(90, 100, 200).round(1)  # rounding makes ties
    heap, made = WorstFrames(4), []

    def make(i: int, a: float) -> WorstFrame:
        made.append(i)
        return frame(i, a)

    for i, a in enumerate(agreements):
        heap.offer(float(a), i, lambda i=i, a=a: make(i, float(a)))
        assert len(heap) <= 4
    expected = sorted(range(200), key=lambda i: (agreements[i], i))[:4]
    assert [f.index for f in heap.frames()] == expected
    assert len(made) < 40  # payloads are built only for frames that enter, not for all 200


def test_worst_frame_ties_keep_the_earlier_frame_and_zero_keeps_none() -> None:
    heap = WorstFrames(1)
    assert heap.offer(95.0, 3, lambda: frame(3, 95.0))
    assert not heap.offer(95.0, 7, lambda: frame(7, 95.0))
    assert heap.offer(94.0, 9, lambda: frame(9, 94.0)) and heap.frames()[0].index == 9
    assert not WorstFrames(0).offer(1.0, 0, lambda: frame(0, 1.0))


def test_accumulator_keeps_worst_frames_with_maps() -> None:
    ref = halves()
    preds = []
    for n in (1, 5, 0, 3):  # frame i changes n pixels of the interior of class 0
        p = ref.copy()
        p.reshape(-1)[:n] = 2
        preds.append(p)
    summary, acc = run(ref, ref, preds, keep=2)
    (worst,) = acc.worst_frames()
    assert [f.index for f in worst] == [1, 3] and [w["index"] for w in summary["worst_frames"]] == [1, 3]
    assert worst[0].candidate.dtype == np.uint8 and (worst[0].candidate != worst[0].reference).sum() == 5
    assert summary["worst_frames"][0]["agreement"] == pytest.approx(100 * (1 - 5 / 80))
