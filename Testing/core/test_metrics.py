"""orbitai.metrics against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.metrics.segmentation import (
    Overlap,
    per_label_metrics,
    volume_agreement,
    volume_cm3,
)


def test_overlap_hand_computed():
    truth = np.zeros((1, 1, 10), bool)
    pred = np.zeros((1, 1, 10), bool)
    truth[..., 0:6] = True   # 6 voxels
    pred[..., 2:10] = True   # 8 voxels, 4 shared
    o = Overlap.of(pred, truth)
    assert (o.tp, o.fp, o.fn, o.tn) == (4, 4, 2, 0)
    assert o.iou == pytest.approx(4 / 10)
    assert o.dice == pytest.approx(8 / 14)
    assert o.paper_sp == pytest.approx(4 / 6)   # over the truth (Eq. 4)
    assert o.paper_sn == pytest.approx(4 / 8)   # over the prediction (Eq. 5)
    assert o.volume_similarity == pytest.approx(1 - abs(2 - 4) / 14)


def test_empty_masks_agree_perfectly_and_disjoint_score_zero():
    z = np.zeros((2, 2, 2), bool)
    assert Overlap.of(z, z).dice == 1.0
    a = z.copy()
    a[0, 0, 0] = True
    assert Overlap.of(a, z).dice == 0.0 and Overlap.of(z, a).iou == 0.0


def test_per_label_and_volumes():
    truth = np.zeros((4, 4, 4), np.uint8)
    truth[:2] = 1
    pred = truth.copy()
    pred[0, 0, 0] = 2
    m = per_label_metrics(pred, truth, {1: "a", 2: "b"}, spacing=(0.5, 0.5, 2.0))
    assert m["a"]["volume_true_cm3"] == pytest.approx(32 * 0.5 / 1000)
    assert m["a"]["iou"] == pytest.approx(31 / 32)
    assert m["b"]["dice"] == 0.0
    assert volume_cm3(np.ones((10, 10, 10)), (1, 1, 1)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ"):
        per_label_metrics(pred[:2], truth, {1: "a"}, (1, 1, 1))


def test_volume_agreement_hand_computed():
    t = [1.0, 2.0, 3.0, 4.0]
    p = [1.1, 1.9, 3.3, 4.0]
    v = volume_agreement(p, t)
    assert v["mae_cm3"] == pytest.approx((0.1 + 0.1 + 0.3 + 0) / 4)
    assert v["rmse_cm3"] == pytest.approx(np.sqrt((0.01 + 0.01 + 0.09) / 4))
    assert v["relative_error_pct"] == pytest.approx((10 + 5 + 10 + 0) / 4)
    assert v["pearson_r"] == pytest.approx(np.corrcoef(p, t)[0, 1])
    with pytest.raises(ValueError):
        volume_agreement([1.0], [1.0])
