"""Lesion-wise detection F1 and absolute volume difference against hand-made masks (exact values)."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.metrics.segmentation import (
    LesionDetection,
    absolute_volume_difference,
    lesion_components,
    lesion_f1,
    lesion_metrics,
)


def _blob(m: np.ndarray, z: int, y: int, x: int, r: int = 1) -> None:
    m[z - r: z + r + 1, y - r: y + r + 1, x - r: x + r + 1] = 1


def test_three_lesions_two_found_one_false_positive():
    truth = np.zeros((20, 20, 20), np.uint8)
    pred = np.zeros_like(truth)
    for c in [(4, 4, 4), (10, 10, 10), (15, 4, 15)]:
        _blob(truth, *c)
    pred[4, 4, 4] = 1                  # one voxel inside lesion 1: found
    _blob(pred, 11, 11, 11)            # overlaps lesion 2 partly: found
    _blob(pred, 4, 15, 15)             # touches nothing: false positive
    d = LesionDetection.of(pred, truth)
    assert (d.n_true, d.n_pred, d.detected, d.true_positive_pred, d.false_positive) == (3, 3, 2, 2, 1)
    assert d.recall == pytest.approx(2 / 3) and d.precision == pytest.approx(2 / 3)
    assert lesion_f1(pred, truth) == pytest.approx(2 / 3)


def test_one_component_over_two_lesions_and_corner_connectivity():
    truth = np.zeros((12, 12, 12), np.uint8)
    truth[2, 2, 2] = truth[3, 3, 3] = 1      # touch at a corner: one lesion (26-connected)
    truth[2, 2, 8] = truth[2, 2, 10] = 1     # two lesions two voxels apart
    assert lesion_components(truth)[1] == 3
    pred = np.zeros_like(truth)
    pred[2, 2, 8:11] = 1                      # one component covering both
    d = LesionDetection.of(pred, truth)
    assert (d.detected, d.n_pred, d.false_positive) == (2, 1, 0)
    assert d.precision == 1.0 and d.recall == pytest.approx(2 / 3)
    assert d.f1 == pytest.approx(0.8)


def test_min_voxels_and_empty_masks():
    truth = np.zeros((8, 8, 8), np.uint8)
    pred = np.zeros_like(truth)
    assert lesion_f1(pred, truth) == 1.0
    pred[1, 1, 1] = 1
    assert lesion_f1(pred, truth) == 0.0
    assert lesion_f1(pred, truth, min_voxels=2) == 1.0      # the single voxel is ignored
    with pytest.raises(ValueError, match="differ"):
        lesion_f1(pred, truth[:4])


def test_absolute_volume_difference_in_ml_and_percent():
    truth = np.zeros((10, 10, 10), np.uint8)
    pred = np.zeros_like(truth)
    truth.flat[:10] = 1
    pred.flat[:5] = 1
    avd = absolute_volume_difference(pred, truth, (1.0, 1.0, 2.0))
    assert avd["volume_true_ml"] == pytest.approx(0.02) and avd["volume_pred_ml"] == pytest.approx(0.01)
    assert avd["avd_ml"] == pytest.approx(0.01) and avd["avd_percent"] == pytest.approx(50.0)
    assert np.isnan(absolute_volume_difference(pred, np.zeros_like(truth), (1, 1, 1))["avd_percent"])
    m = lesion_metrics(pred, truth, (1.0, 1.0, 2.0))
    assert m["dice"] == pytest.approx(2 * 5 / 15) and m["lesion_f1"] == 1.0


def test_recall_is_split_at_10_mm3_of_true_lesion():
    truth = np.zeros((12, 12, 12), np.uint8)
    truth[1:4, 1:4, 1:4] = 1            # 27 voxels x 0.5 mm3 = 13.5 mm3: large
    truth[8:10, 8:10, 8:10] = 1         # 8 x 0.5 = 4 mm3: small
    truth[1:3, 8:10, 1:3] = 1           # 4 mm3: small
    pred = np.zeros_like(truth)
    pred[2, 2, 2] = pred[9, 9, 9] = 1
    m = lesion_metrics(pred, truth, (0.5, 1.0, 1.0))
    assert (m["n_true_ge_10mm3"], m["n_true_lt_10mm3"]) == (1.0, 2.0)
    assert m["recall_ge_10mm3"] == 1.0 and m["recall_lt_10mm3"] == 0.5
    assert np.isnan(lesion_metrics(pred, truth * 0, (1, 1, 1))["recall_ge_10mm3"])
