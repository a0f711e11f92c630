"""Comparator over fake runners whose differences are known exactly, in a second (test_parity.py runs real
models for two minutes; these run in a second, so the mutation run over toolkit/compare/comparator.py can
use them: docs/MUTATION.md).

The reference's logits are its normalised input's first three channels (tests/video/video_helpers.py); a
candidate adds ``DELTA`` to class ``SHIFTED``'s logit on the left half of every frame, so its agreement, its max and
mean |logit difference| and its mIoU follow from the reference's class maps by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.video import HW, NUM_CLASSES, FakeRunner
from toolkit.compare import DEFAULT_TOLERANCES, tolerance_for
from toolkit.compare.comparator import Comparator, _pct, check_label_space
from toolkit.compare.drift import DriftOptions, boundary_band
from toolkit.core.dataset import FrameSet
from toolkit.core.dataset_info import DatasetInfo
from toolkit.core.description import ModelDescription
from toolkit.core.meta import ModelMeta
from toolkit.core.names import OUTPUT_NAME
from toolkit.data import make_scene, synthetic_info
from toolkit.errors import ToolkitError
from toolkit.evaluate import predict_logits
from toolkit.metrics import ConfusionMatrix

FRAMES = 3
DELTA = 1000.0  # far above the normalised inputs' range (|x| <= 2): the class wins wherever it is added
SHIFTED = 2  # road: less than half of each scene's left half, so the change is large enough to fail fp16


class Shifted(FakeRunner):
    backend = "shifted"

    def __init__(self, name: str = "shifted", precision: str = "fp16", lowering: str = "mask") -> None:
        super().__init__()
        self.name, self.source = name, f"/models/{name}.onnx"
        d = self.description
        self._description = ModelDescription(d.meta, precision, lowering, {"source_sha256": "ab"})

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        y = super()._infer_impl(feed)[OUTPUT_NAME].copy()
        y[:, SHIFTED, :, : y.shape[-1] // 2] += DELTA
        return {OUTPUT_NAME: y}


class Tracked(FakeRunner):
    def __init__(self, meta: ModelMeta | None = None, name: str = "fake") -> None:
        super().__init__()
        self.name, self.events = name, []
        if meta is not None or name == "no-meta":
            self._description = ModelDescription(meta)

    def _activate_impl(self) -> ModelDescription:
        self.events.append("activate")
        return self.description

    def _deactivate_impl(self) -> None:
        self.events.append("deactivate")


def frames(info: DatasetInfo | None = None) -> FrameSet:
    scenes = [make_scene(i, HW, NUM_CLASSES) for i in range(FRAMES)]
    return FrameSet([s[0] for s in scenes], [s[1] for s in scenes], info or synthetic_info(NUM_CLASSES))


def reference_maps(data: FrameSet) -> list[np.ndarray]:
    ref, ds = FakeRunner(), synthetic_info(NUM_CLASSES)
    with ref:
        return [predict_logits(ref, data.load(i)[0], ds.mean, ds.std, HW).argmax(0) for i in range(len(data))]


def test_candidate_numbers_follow_from_a_known_change() -> None:
    data = frames()
    ref_maps = reference_maps(data)
    ref, same, shifted = FakeRunner(), Tracked(name="same"), Shifted()
    report = Comparator(ref, [same, shifted]).run(data, dataset_info={"split": "val"})
    left = np.zeros(HW, bool)
    left[:, : HW[1] // 2] = True
    cand_maps = [np.where(left, SHIFTED, m) for m in ref_maps]
    agree = sum(int((c == r).sum()) for c, r in zip(cand_maps, ref_maps, strict=True))
    pixels = FRAMES * HW[0] * HW[1]
    ref_cm, cand_cm = ConfusionMatrix(NUM_CLASSES, 255), ConfusionMatrix(NUM_CLASSES, 255)
    for i in range(FRAMES):
        label = data.load(i)[1]
        ref_cm.update(ref_maps[i], label)
        cand_cm.update(cand_maps[i], label)
    rs, cs = ref_cm.scores(), cand_cm.scores()
    names = list(synthetic_info(NUM_CLASSES).class_names)

    assert report.dataset == {"split": "val", "images": FRAMES} and report.class_names == names
    r = report.reference
    assert (r["name"], r["backend"], r["precision"]) == ("fake", "fake", "fp32")
    assert r["miou"] == pytest.approx(100 * rs.miou) and r["global_acc"] == pytest.approx(100 * rs.global_acc)
    assert r["label_pixels"] == ref_cm.matrix.sum(1).tolist() and r["band_px"] == DriftOptions().band_px
    assert r["per_class_iou"] == pytest.approx({n: 100 * v for n, v in zip(names, rs.per_class_iou, strict=True)})
    assert 0 < r["miou_band"] <= 100
    assert report.palette == [list(c) for c in synthetic_info(NUM_CLASSES).palette]

    same_r, shifted_r = report.candidates
    assert same_r.pixel_agreement == 100.0 and same_r.max_abs_logit_diff == 0 and same_r.delta_miou == 0
    assert same_r.passed and same_r.precision == "fp32" and same_r.tolerance == DEFAULT_TOLERANCES["fp32"]

    s = shifted_r
    assert (s.name, s.path, s.backend, s.precision, s.lowering) == ("shifted", "/models/shifted.onnx", "shifted",
                                                                    "fp16", "mask")
    assert s.pixel_agreement == pytest.approx(100 * agree / pixels, abs=1e-12) and agree < pixels
    # float32 rounding of x + 1000 - x: at most half an ulp of 1000 (3.1e-5) per value
    assert s.max_abs_logit_diff == pytest.approx(DELTA, abs=1e-4)
    assert s.mean_abs_logit_diff == pytest.approx(DELTA / (2 * NUM_CLASSES), abs=1e-4)  # 1 of 3 channels, half
    assert s.miou == pytest.approx(100 * cs.miou) and s.delta_miou == pytest.approx(100 * (cs.miou - rs.miou))
    assert s.per_class_iou == pytest.approx({n: 100 * v for n, v in zip(names, cs.per_class_iou, strict=True)})
    assert s.per_class_delta_iou == pytest.approx(
        {n: 100 * (c - v) for n, c, v in zip(names, cs.per_class_iou, rs.per_class_iou, strict=True)})
    assert s.tolerance == DEFAULT_TOLERANCES["fp16"] and not s.passed and not report  # a real change fails fp16
    assert s.drift is not None and s.drift["changed_pixels"] == pixels - agree
    assert s.temporal is None and report.flicker_pairs == [] and len(report.worst_frames) == 2


def test_tolerance_overrides_reach_every_candidate() -> None:
    report = Comparator(FakeRunner(), [Shifted(), Shifted("b", precision="int8")], max_miou_drop=100.0,
                        min_pixel_agreement=0.0).run(frames())
    assert [c.tolerance for c in report.candidates] == [tolerance_for("fp16", 100.0, 0.0),
                                                        tolerance_for("int8", 100.0, 0.0)]
    assert report and all(c.passed for c in report.candidates)


def test_tolerance_for() -> None:
    assert tolerance_for("fp16") == DEFAULT_TOLERANCES["fp16"]
    assert tolerance_for("fp8") == DEFAULT_TOLERANCES["int8"]  # unknown precision: the loosest known
    assert tolerance_for("fp16", max_miou_drop=0.5) == type(DEFAULT_TOLERANCES["fp16"])(0.5, 99.0)
    assert tolerance_for("fp16", min_pixel_agreement=90.0) == type(DEFAULT_TOLERANCES["fp16"])(0.1, 90.0)


def test_temporal_and_drift_options_are_used() -> None:
    report = Comparator(FakeRunner(), [Shifted()], drift=DriftOptions(band_px=2, worst_frames=1),
                        temporal=True).run(frames())
    (s,) = report.candidates
    assert report.reference["band_px"] == 2 and len(report.worst_frames[0]) == 1
    assert s.temporal is not None and len(report.flicker_pairs) == 1


def test_runners_are_deactivated_when_the_comparison_fails() -> None:
    ref, cand = Tracked(name="no-meta"), Tracked()
    with pytest.raises(ToolkitError) as e:
        Comparator(ref, [cand]).run(frames())
    assert str(e.value) == "reference 'no-meta' has no label space (use a checkpoint)"
    assert ref.events == cand.events == ["activate", "deactivate"]


def test_a_dataset_of_another_label_space_is_refused() -> None:
    with pytest.raises(ToolkitError) as e:
        Comparator(FakeRunner(), [FakeRunner()]).run(frames(synthetic_info(NUM_CLASSES + 1)))
    assert str(e.value) == ("dataset has 4 classes, the reference 3: evaluate on the label space the model was "
                            "trained for")


def test_a_clip_without_labels_takes_the_references_label_space() -> None:
    data = frames()
    data._info = None  # a clip (parity --video): no label space of its own
    report = Comparator(FakeRunner(), [FakeRunner()]).run(data)
    assert report.candidates[0].pixel_agreement == 100.0


def test_a_candidate_of_other_classes_is_refused() -> None:
    ref_meta = FakeRunner().meta
    other = ModelMeta("segnet", 4, synthetic_info(NUM_CLASSES + 2), input_size=HW)
    cand = Tracked(other, name="other")
    with pytest.raises(ToolkitError) as e:
        check_label_space(ref_meta, cand)
    assert str(e.value) == ("candidate 'other' has 5 classes (sky, road, building, car...), the reference 3 (sky, "
                            "road, building...): compare models of the same label space")
    check_label_space(ref_meta, Tracked(name="no-meta"))  # no meta: checked on the logits instead
    with pytest.raises(ToolkitError, match="compare models of the same label space"):
        Comparator(FakeRunner(), [cand]).run(frames())


def test_each_candidate_is_compared_with_the_reference_not_with_another_candidate() -> None:
    data = frames()
    report = Comparator(FakeRunner(), [Shifted(), Tracked(name="same")]).run(data)
    shifted, same = report.candidates
    assert shifted.pixel_agreement < 100 and shifted.max_abs_logit_diff == pytest.approx(DELTA, abs=1e-4)
    assert same.pixel_agreement == 100.0 and same.max_abs_logit_diff == 0 and same.drift["changed_pixels"] == 0
    assert shifted.drift["changed_pixels"] > 0
    names = {data.name(i) for i in range(len(data))}
    assert {f["name"] for f in shifted.drift["worst_frames"]} <= names  # frames named as the dataset names them


def test_a_candidate_without_metadata_runs_with_the_references() -> None:
    report = Comparator(FakeRunner(), [Tracked(name="no-meta")]).run(frames())
    assert report.candidates[0].pixel_agreement == 100.0


def test_the_reference_names_its_first_four_classes() -> None:
    five = ModelMeta("segnet", 4, synthetic_info(NUM_CLASSES + 2), input_size=HW)
    with pytest.raises(ToolkitError) as e:
        check_label_space(five, FakeRunner())
    assert "the reference 5 (sky, road, building, car...)" in str(e.value)


def test_an_absent_class_scores_none_not_nan() -> None:
    assert _pct(float("nan")) is None and _pct(0.25) == 25.0


class FlickersOnce(FakeRunner):
    """The reference's maps, but with class ``SHIFTED`` over the left half on the third call only."""

    def __init__(self) -> None:
        super().__init__()
        self.name, self.calls = "flickers", 0

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        y = super()._infer_impl(feed)[OUTPUT_NAME].copy()
        if self.calls == 2:
            y[:, SHIFTED, :, : y.shape[-1] // 2] += DELTA
        self.calls += 1
        return {OUTPUT_NAME: y}


def test_temporal_summary_names_the_worst_pair_and_splits_the_rate_on_the_drift_band() -> None:
    """One still scene four times: the reference never flips; the candidate flips set S (the left half where the
    reference is not SHIFTED) into frame 2 and back out of it, so pairs 2 and 3 tie at |S| / pixels and the earlier
    wins. The band is the drift options' band_px (2, not the temporal default 3) around the reference's boundaries."""
    image, label = make_scene(0, HW, NUM_CLASSES)
    data = FrameSet([image] * 4, [label] * 4, synthetic_info(NUM_CLASSES))
    (ref_map,) = reference_maps(FrameSet([image], [label], synthetic_info(NUM_CLASSES)))
    report = Comparator(FakeRunner(), [FlickersOnce()], drift=DriftOptions(band_px=2), temporal=True).run(data)
    t = report.candidates[0].temporal
    s = np.zeros(HW, bool)
    s[:, : HW[1] // 2] = True
    s &= ref_map != SHIFTED
    interior = ~boundary_band(ref_map, 2)
    assert boundary_band(ref_map, 2).sum() != boundary_band(ref_map, 3).sum()  # the band width is seen
    pixels = HW[0] * HW[1]
    assert t["band_px"] == 2 and t["pairs"] == 3 and t["per_pair"]["index"] == [1, 2, 3]
    assert t["reference_flip_rate"] == 0.0
    assert t["per_pair"]["flip_rate"] == pytest.approx([0.0, 100 * s.sum() / pixels, 100 * s.sum() / pixels])
    assert t["interior_flip_rate"] == pytest.approx(100 * 2 * (s & interior).sum() / (3 * interior.sum()))
    assert t["boundary_area"] == pytest.approx(100 * (~interior).sum() / pixels)
    assert t["largest_excess_pair"] == {"index": 2, "frames": ["frame 1", "frame 2"],
                                        "excess_flip_rate": pytest.approx(100 * s.sum() / pixels)}
    (pair,) = report.flicker_pairs
    assert pair.index == 2 and pair.names == ("frame 1", "frame 2")
    assert ((pair.candidate[1] != pair.candidate[0]) == s).all()
    cm = ConfusionMatrix(NUM_CLASSES, 255)
    cm.update(ref_map, label)
    assert t["reference_per_frame_miou"] == pytest.approx([100 * cm.scores().miou] * 4)
    own = t["per_frame_miou"]
    assert own[:2] + own[3:] == t["reference_per_frame_miou"][:3] and own[2] < own[0]  # S is wrong in frame 2
