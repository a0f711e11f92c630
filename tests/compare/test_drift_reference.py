"""The boundary share is measured on the reference's band, the trimap mIoU on the labels' band: with a label
that differs from the reference the two bands differ, so swapping them is seen (every test in test_drift.py
uses label == reference, where the two bands coincide)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.drift import halves, run


def rows() -> np.ndarray:
    """Class 0 in rows 0-3, class 2 in rows 4-7: a horizontal boundary where halves() has a vertical one."""
    m = np.zeros((8, 10), np.int64)
    m[4:] = 2
    return m


def test_boundary_share_uses_the_reference_band_not_the_label_band() -> None:
    label, ref = rows(), halves()
    pred = ref.copy()
    pred[0, 5] = 0  # on the reference's boundary (columns 4-5), far from the labels' (rows 3-4)
    pred[7, 9] = 0  # on neither
    summary, _ = run(label, ref, [pred])
    assert summary["changed_pixels"] == 2
    assert summary["boundary_share"] == 50.0  # the labels' band would give 0.0
    assert summary["changed_on_boundary"] == 1
    assert summary["band_area"] == pytest.approx(100 * 16 / 80)  # the reference's band: 2 columns x 8 rows


def test_trimap_counts_the_label_band_not_the_reference_band() -> None:
    label, ref = rows(), halves()
    summary, _ = run(label, ref, [ref.copy()])
    assert summary["band_label_pixels"] == 2 * 10  # rows 3-4 of the labels, not columns 4-5 of the reference
