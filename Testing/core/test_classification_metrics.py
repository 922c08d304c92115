"""Classification metrics against hand-computed values; DeLong CI against a bootstrap; report files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from orbitai.errors import InputError
from orbitai.metrics.classification import (
    TABLE2_COLUMNS,
    binary_classification_metrics,
    calibration,
    decision_curve,
    delong_auc_ci,
    mean_sd,
    radar_data,
    roc_points,
    table2_row,
)
from orbitai.metrics.figures import write_cohort_report, write_figures

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


def test_table2_columns_hand_computed():
    # threshold 0.3: calls 0 1 1 | 1 1 1 -> TP 3, FP 2, FN 0, TN 1
    m = binary_classification_metrics(Y, P, threshold=0.3)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 2, 0, 1)
    assert m["ppv"] == pytest.approx(3 / 5) and m["npv"] == pytest.approx(1.0)
    assert m["sensitivity"] == pytest.approx(1.0) and m["specificity"] == pytest.approx(1 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    m5 = binary_classification_metrics(Y, P)
    assert m5["ppv"] == pytest.approx(2 / 3) and m5["npv"] == pytest.approx(2 / 3)
    row = table2_row("RDINet (clinical)", m, cohort="test")
    assert list(row) == ["model", "cohort", "AUC", "AUC_CI95_low", "AUC_CI95_high", "ACC", "SEN", "SPE", "PPV",
                         "NPV"]
    assert row["AUC"] == round(7 / 9, 4) and row["PPV"] == 0.6 and row["SPE"] == round(1 / 3, 4)
    assert list(TABLE2_COLUMNS) == ["AUC", "ACC", "SEN", "SPE", "PPV", "NPV"]


def test_roc_points_hand_computed():
    r = roc_points(Y, P)
    # scores high to low: 0.9 (1), 0.8 (1), 0.6 (0), 0.4 (0), 0.35 (1), 0.1 (0)
    assert np.allclose(r["thresholds"][1:], [0.9, 0.8, 0.6, 0.4, 0.35, 0.1]) and np.isinf(r["thresholds"][0])
    assert np.allclose(r["tpr"], [0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1])
    assert np.allclose(r["fpr"], [0, 0, 0, 1 / 3, 2 / 3, 2 / 3, 1])


def test_calibration_and_brier_hand_computed():
    c = calibration(Y, P, n_bins=2)
    # bin [0, 0.5): p 0.1, 0.4, 0.35 with y 0, 0, 1; bin [0.5, 1]: p 0.6, 0.8, 0.9 with y 0, 1, 1
    assert np.allclose(c["prob_true"], [1 / 3, 2 / 3])
    assert np.allclose(c["prob_pred"], [0.85 / 3, 2.3 / 3])
    assert c["brier"] == pytest.approx((0.01 + 0.16 + 0.36 + 0.4225 + 0.04 + 0.01) / 6)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        calibration(Y, [1.2, 0, 0, 1, 1, 1])


def test_decision_curve_hand_computed():
    d = decision_curve(Y, P, thresholds=[0.25, 0.5, 0.95])
    # pt 0.25 (odds 1/3): treated p >= 0.25 -> TP 3, FP 2 of 6; pt 0.5: TP 2, FP 1; pt 0.95: nobody
    assert np.allclose(d["model"], [3 / 6 - 2 / 6 / 3, 2 / 6 - 1 / 6, 0])
    # treat all: prevalence 1/2 - 1/2 * odds
    assert np.allclose(d["treat_all"], [0.5 - 0.5 / 3, 0.0, 0.5 - 0.5 * 19])
    assert np.array_equal(d["treat_none"], [0, 0, 0])
    default = decision_curve(Y, P)
    assert len(default["thresholds"]) == 99 and default["thresholds"][0] == 0.01 and default["thresholds"][-1] == 0.99
    # a perfect model's net benefit is the prevalence at any threshold
    assert np.allclose(decision_curve([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0])["model"], 0.5)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        decision_curve(Y, P, thresholds=[0.0, 0.5])


def test_radar_data():
    axes, values = radar_data({"a": binary_classification_metrics(Y, P),
                               "b": binary_classification_metrics(Y, P, threshold=0.3)})
    assert axes == ["AUC", "ACC", "SEN", "SPE", "PPV", "NPV"]
    assert np.allclose(values["b"], [7 / 9, 4 / 6, 1, 1 / 3, 3 / 5, 1])
    with pytest.raises(InputError):
        radar_data({})


def test_figures_are_written(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 60)
    curves = {"ResNet-50": (y, np.clip(0.5 * y + 0.5 * rng.random(60), 0, 1)),
              "RDINet": (y, np.clip(0.7 * y + 0.3 * rng.random(60), 0, 1))}
    paths = write_figures(curves, tmp_path / "fig", prefix="mrlr_", title="MR+LR")
    assert sorted(paths) == ["calibration", "decision_curve", "radar", "roc"]
    for p in paths.values():
        assert p.parent == tmp_path / "fig" and p.name.startswith("mrlr_")
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not [f for f in (tmp_path / "fig").iterdir() if f.name.startswith(".")]
