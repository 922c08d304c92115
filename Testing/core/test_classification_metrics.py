"""Classification metrics against hand-computed values; DeLong CI against a bootstrap; report files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from orbitai.metrics.classification import (
    binary_classification_metrics,
    delong_auc_ci,
    mean_sd,
    write_cohort_report,
)

Y = [0, 0, 0, 1, 1, 1]
P = [0.1, 0.4, 0.6, 0.35, 0.8, 0.9]


def test_hand_computed_example():
    m = binary_classification_metrics(Y, P)
    # calls at 0.5: 0 0 1 | 0 1 1  -> TP 2, FP 1, FN 1, TN 2
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3) and m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(2 / 3) and m["f1"] == pytest.approx(2 / 3)
    # positive > negative in 7 of the 9 pairs
    assert m["auc"] == pytest.approx(7 / 9)
    lo, hi = m["auc_ci95"]
    assert 0 <= lo < 7 / 9 < hi <= 1


def test_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80)
    p = np.round(rng.random(80) + 0.3 * y, 1)            # rounded: many ties
    assert delong_auc_ci(y, p)[0] == pytest.approx(roc_auc_score(y, p))


def test_ties_count_half():
    auc, _, _ = delong_auc_ci([0, 1], [0.5, 0.5])
    assert auc == pytest.approx(0.5)


def test_delong_matches_bootstrap():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(150, int), np.ones(150, int)]
    p = np.r_[rng.normal(0, 1, 150), rng.normal(1.2, 1, 150)]
    auc, lo, hi = delong_auc_ci(y, p)
    boots = []
    for _ in range(1000):
        i = np.r_[rng.integers(0, 150, 150), 150 + rng.integers(0, 150, 150)]   # stratified
        boots.append(delong_auc_ci(y[i], p[i])[0])
    blo, bhi = np.percentile(boots, [2.5, 97.5])
    assert abs(lo - blo) < 0.015 and abs(hi - bhi) < 0.015


def test_one_class_and_shape_errors():
    with pytest.raises(ValueError, match="both classes"):
        binary_classification_metrics([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="labels but"):
        binary_classification_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="at least one run"):
        mean_sd([])


def test_mean_sd():
    s = mean_sd([{"auc": 0.8, "acc": 0.7}, {"auc": 0.9, "acc": 0.9}])
    assert s["auc"][0] == pytest.approx(0.85) and s["auc"][1] == pytest.approx(np.std([0.8, 0.9], ddof=1))


def test_cohort_report(tmp_path):
    rows = [{"case_id": f"c{i}", "y_true": y, "prob": p} for i, (y, p) in enumerate(zip(Y, P))]
    m = write_cohort_report(rows, tmp_path / "rep", title="t")
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["auc"] == pytest.approx(m["auc"])
    assert (tmp_path / "rep" / "predictions.csv").read_text().count("\n") == 7
    assert (tmp_path / "rep" / "report.png").stat().st_size > 10_000
    assert not [f for f in (tmp_path / "rep").iterdir() if f.name.startswith(".")]


def test_cohort_report_needs_columns(tmp_path):
    with pytest.raises(ValueError, match="case_id, y_true and prob"):
        write_cohort_report([{"y_true": 0, "prob": 0.2}, {"y_true": 1, "prob": 0.7}], tmp_path)
    assert not list(tmp_path.iterdir())
