"""The drift summary over several frames, as the report reads it: totals that add up across frames, the exact
keys and integer counts of the JSON, the worst frames' own summaries and payloads, the option checks, and the
cases without a band (written for the mutation run over toolkit/compare/drift.py: docs/MUTATION.md)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.drift import NAMES, halves
from toolkit.compare.drift import DriftAccumulator, DriftOptions, boundary_band
from toolkit.errors import InvalidValueError
from toolkit.metrics import ConfusionMatrix

SUMMARY_KEYS = {"band_px", "pixels", "changed_pixels", "changed_on_boundary", "boundary_share", "band_area",
                "miou_band", "reference_miou_band", "delta_miou_band", "band_label_pixels", "confusion_difference",
                "transitions", "top_transitions", "worst_frames"}


def accumulate(label: np.ndarray, ref: np.ndarray, preds: list[np.ndarray], ignore: int = 255,
               options: DriftOptions | None = None) -> tuple[dict, DriftAccumulator, list[np.ndarray]]:
    """Frame i: image filled with i + 1 (so each worst frame's image is told apart), the same label and reference."""
    acc = DriftAccumulator(3, ignore, 1, options or DriftOptions(band_px=1, worst_frames=3))
    ref_cm, cand_cm = ConfusionMatrix(3, ignore), ConfusionMatrix(3, ignore)
    images = []
    for i, pred in enumerate(preds):
        images.append(np.full((*label.shape, 3), i + 1, np.uint8))
        acc.frame(i, f"f{i}", images[-1], label, ref)
        acc.add(0, pred)
        ref_cm.update(ref, label)
        cand_cm.update(pred, label)
    (summary,) = acc.summaries([cand_cm], ref_cm, NAMES)
    return summary, acc, images


def two_frames() -> tuple[np.ndarray, list[np.ndarray]]:
    """halves() (band 1: columns 4-5). Frame 0: one edge pixel 1 -> 0, one interior 1 -> 2. Frame 1 (worse, later):
    one edge pixel 0 -> 1, interior pixels 0 -> 2 and 0 -> 1."""
    ref = halves()
    p0, p1 = ref.copy(), ref.copy()
    p0[2, 5], p0[2, 9] = 0, 2
    p1[7, 4], p1[0, 0], p1[5, 0] = 1, 2, 1
    return ref, [p0, p1]


def test_totals_add_up_over_frames_and_the_json_has_every_key_with_integer_counts() -> None:
    ref, preds = two_frames()
    s, _, _ = accumulate(ref, ref, preds)
    assert set(s) == SUMMARY_KEYS and s["band_px"] == 1
    assert (s["pixels"], s["changed_pixels"], s["changed_on_boundary"]) == (160, 5, 2)
    assert s["boundary_share"] == pytest.approx(100 * 2 / 5)
    assert s["band_area"] == pytest.approx(100 * 32 / 160)  # 16 band pixels in each frame
    assert s["transitions"] == [[77, 2, 1], [1, 78, 1], [0, 0, 0]]  # rows: the reference's class
    assert all(type(v) is int for row in s["transitions"] + s["confusion_difference"] for v in row)
    assert s["confusion_difference"] == (np.array(s["transitions"]) - np.diag([80, 80, 0])).tolist()  # label == ref
    top = {(t["from"], t["to"]): (t["pixels"], t["share_of_changed"]) for t in s["top_transitions"]}
    assert top == {("a", "b"): (2, 40.0), ("a", "c"): (1, 20.0), ("b", "a"): (1, 20.0), ("b", "c"): (1, 20.0)}


def test_worst_frames_rank_by_agreement_and_carry_their_own_summary_and_maps() -> None:
    ref, preds = two_frames()
    s, acc, images = accumulate(ref, ref, preds)
    assert s["worst_frames"] == [
        {"index": 1, "name": "f1", "agreement": pytest.approx(100 * (1 - 3 / 80)), "changed_pixels": 3,
         "boundary_share": pytest.approx(100 / 3)},
        {"index": 0, "name": "f0", "agreement": pytest.approx(100 * (1 - 2 / 80)), "changed_pixels": 2,
         "boundary_share": 50.0}]
    (worst,) = acc.worst_frames()
    for f, i in zip(worst, (1, 0), strict=True):
        assert (f.image == images[i]).all() and f.image is not images[i]  # a copy: the caller reuses its buffers
        assert f.reference.dtype == f.candidate.dtype == np.uint8
        assert (f.reference == ref).all() and (f.candidate == preds[i]).all()


def test_a_frame_of_one_pixel_that_changed_agrees_nowhere() -> None:
    s, _, _ = accumulate(np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64), [np.ones((1, 1), np.int64)])
    assert s["worst_frames"][0]["agreement"] == 0.0 and s["changed_pixels"] == 1


def test_a_void_label_other_than_255_is_left_out_of_the_band_miou() -> None:
    label = halves()
    label[0, 4:6] = 3  # void (ignore 3) on the boundary
    ref = halves()
    s, _, _ = accumulate(label, ref, [ref.copy()], ignore=3)
    band = boundary_band(label, 1)
    assert s["band_label_pixels"] == int((band & (label != 3)).sum())
    assert s["miou_band"] == s["reference_miou_band"] == 100.0 and s["delta_miou_band"] == 0.0


def test_no_boundary_in_the_labels_gives_no_band_miou() -> None:
    one = np.zeros((6, 6), np.int64)
    s, _, _ = accumulate(one, one, [one.copy()])
    assert s["band_label_pixels"] == 0
    assert s["miou_band"] is None and s["reference_miou_band"] is None and s["delta_miou_band"] is None


def test_options_refuse_a_band_under_one_or_a_negative_frame_count_with_one_message() -> None:
    with pytest.raises(InvalidValueError) as e:
        DriftOptions(band_px=0)
    assert str(e.value) == "band_px=0 must be >= 1 and worst_frames=3 >= 0"
    with pytest.raises(InvalidValueError) as e:
        DriftOptions(band_px=2, worst_frames=-1)
    assert str(e.value) == "band_px=2 must be >= 1 and worst_frames=-1 >= 0"
    assert DriftOptions(band_px=1, worst_frames=0).worst_frames == 0  # keep no frames: allowed
    with pytest.raises(InvalidValueError) as e:
        boundary_band(halves(), 0)
    assert str(e.value) == "radius 0: expected >= 1"
