"""Confusion-matrix scores against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toolkit.metrics import ConfusionMatrix


def test_hand_computed_case_with_absent_class() -> None:
    # 4 classes; class 3 never appears in labels or predictions; 255 is ignored.
    label = np.array([[0, 0, 1, 1], [2, 2, 255, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    cm = ConfusionMatrix(4, ignore_index=255)
    cm.update(pred, label)
    s = cm.scores()
    # class 0: tp 2 (0,0),(1,3); label count 3; pred count 3 ((0,0),(1,1),(1,3)) -> IoU 2/4
    # class 1: tp 2; label 2; pred 3 -> IoU 2/3
    # class 2: tp 1; label 2; pred 1 (the 2 under 255 is ignored) -> IoU 1/2
    assert s.per_class_iou[:3] == pytest.approx([0.5, 2 / 3, 0.5])
    assert math.isnan(s.per_class_iou[3])
    assert s.absent_classes == [3]
    assert s.miou == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert s.global_acc == pytest.approx(5 / 7)
    assert s.class_avg_acc == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert s.num_pixels == 7
    d = s.as_dict(["a", "b", "c", "d"])
    assert d["per_class_iou"]["d"] is None and d["absent_classes"] == ["d"]


def test_streaming_equals_one_shot() -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, (4, 10, 10))
    pred = rng.integers(0, 5, (4, 10, 10))
    one, many = ConfusionMatrix(5), ConfusionMatrix(5)
    one.update(pred, label)
    for p, t in zip(pred, label, strict=True):
        many.update(p, t)
    np.testing.assert_array_equal(one.matrix, many.matrix)
    assert one.matrix.sum() == 400


def test_class_only_predicted_counts_as_zero_iou() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 2]), np.array([0, 0]))
    s = cm.scores()
    assert s.per_class_iou[2] == 0.0 and math.isnan(s.per_class_iou[1])
    assert s.miou == pytest.approx((0.5 + 0.0) / 2)


def test_perfect_prediction() -> None:
    cm = ConfusionMatrix(3)
    x = np.array([0, 1, 2, 2])
    cm.update(x, x)
    assert cm.scores().miou == 1.0 and cm.scores().global_acc == 1.0


def test_bad_labels_rejected() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match="label values"):
        cm.update(np.array([0]), np.array([7]))
    with pytest.raises(ValueError, match="pixels"):
        cm.update(np.array([0, 1]), np.array([0]))
