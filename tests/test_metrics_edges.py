"""Edge cases of the confusion matrix the mutation run found untested (docs/MUTATION.md): an empty matrix,
a class of one pixel, no ignore label, the label range's bound and message, the JSON form of the scores."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from toolkit.metrics import ConfusionMatrix


def test_an_empty_matrix_scores_nan_without_warnings() -> None:
    cm = ConfusionMatrix(3)
    assert cm.matrix.dtype == np.int64
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nanmean of all-NaN would warn: the guards must keep it from running
        s = cm.scores()
    assert math.isnan(s.miou) and math.isnan(s.global_acc) and math.isnan(s.class_avg_acc)
    assert s.num_pixels == 0 and np.isnan(s.per_class_iou).all() and np.isnan(s.per_class_acc).all()


def test_a_class_of_one_pixel_counts() -> None:
    cm = ConfusionMatrix(2, ignore_index=None)
    cm.update(np.array([[0, 1]]), np.array([[0, 1]]))  # no ignore label: every value is a class
    s = cm.scores()
    assert s.per_class_acc.tolist() == [1.0, 1.0] and s.per_class_iou.tolist() == [1.0, 1.0]
    assert s.class_avg_acc == 1.0 and s.miou == 1.0 and s.global_acc == 1.0


def test_label_range_bound_and_message() -> None:
    cm = ConfusionMatrix(3, ignore_index=255)
    with pytest.raises(ValueError, match=r"label values must be 0\.\.2 or the ignore label 255"):
        cm.update(np.array([0]), np.array([3]))  # k itself is out of range
    cm.update(np.array([2]), np.array([2]))
    assert cm.matrix[2, 2] == 1


def test_scores_as_dict_names_every_class_and_turns_nan_into_none() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([[0, 1, 1]]), np.array([[0, 1, 0]]))  # class 2 absent from labels and predictions
    s = cm.scores()
    d = s.as_dict(["road", "car", "sky"])
    assert d == {
        "miou": pytest.approx(s.miou), "global_acc": pytest.approx(2 / 3), "class_avg_acc": pytest.approx(0.75),
        "per_class_iou": {"road": 0.5, "car": 0.5, "sky": None},
        "per_class_acc": {"road": 0.5, "car": 1.0, "sky": None},
        "absent_classes": ["sky"], "num_pixels": 3,
    }
    assert list(s.as_dict()["per_class_iou"]) == ["0", "1", "2"]  # no names: the class indices


def test_the_default_ignore_label_is_255() -> None:
    cm = ConfusionMatrix(3)  # CamVid's void is remapped to 255 by the loaders (toolkit/data)
    cm.update(np.array([0, 1, 2]), np.array([0, 255, 2]))
    assert cm.matrix.sum() == 2 and cm.matrix[1].sum() == 0


def test_prediction_range_bound_and_message() -> None:
    cm = ConfusionMatrix(3)
    for bad in (3, -1):  # k itself, and a negative id, each alone out of range
        with pytest.raises(ValueError, match=r"^prediction values must be 0\.\.2$"):
            cm.update(np.array([0, bad]), np.array([0, 1]))
    assert cm.matrix.sum() == 0  # a refused batch adds nothing
    cm.update(np.array([2]), np.array([1]))
    assert cm.matrix[1, 2] == 1


def test_reset_and_merge() -> None:
    a, b = ConfusionMatrix(2), ConfusionMatrix(2)
    a.update(np.array([0, 1, 1]), np.array([0, 0, 1]))
    b.update(np.array([1]), np.array([1]))
    a.merge(b)
    assert a.matrix.tolist() == [[1, 1], [0, 2]] and b.matrix.tolist() == [[0, 0], [0, 1]]
    a.reset()
    assert a.matrix.tolist() == [[0, 0], [0, 0]] and a.matrix.dtype == np.int64


def test_scores_as_dict_refuses_a_wrong_number_of_class_names() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 1, 2]), np.array([0, 1, 2]))
    with pytest.raises(ValueError):  # silently dropping a class from the report would hide it
        cm.scores().as_dict(["a", "b"])
