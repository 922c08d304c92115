"""Binary classification metrics shared by TAOActivity, IVGCResponse and NeuroDifferential:
accuracy, precision, sensitivity, specificity, F1 (paper 000's Table 2), ROC AUC with a 95 %
confidence interval (DeLong), PPV and NPV (paper 001's Table 2: AUC (95 % CI), ACC, SEN, SPE, PPV,
NPV), ROC points, calibration curve with Brier score, decision curve analysis (net benefit against
treat-all and treat-none), the radar-chart axes of paper 001's Figure 6, mean +- SD over repeated
runs, and a cohort report (CSV, JSON, PNG). Figures: :mod:`orbitai.metrics.figures`."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_curve

from orbitai.errors import InputError


def _check(y_true, prob) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    if y.shape != p.shape:
        raise InputError(f"{len(y)} labels but {len(p)} probabilities.")
    if not np.isin(y, (0, 1)).all():
        raise InputError("Labels must be 0 or 1.")
    if len(np.unique(y)) < 2:
        raise InputError(f"All {len(y)} labels of the evaluation set are {int(y[0]) if len(y) else '?'}; "
                         "sensitivity, specificity and AUC need both classes in it.")
    if not np.all(np.isfinite(p)):
        raise InputError("Probabilities contain NaN or infinity.")
    return y, p


def delong_auc_ci(y_true, prob, level: float = 0.95) -> tuple[float, float, float]:
    """AUC and its DeLong confidence interval (clipped to [0, 1]).

    Written here because scikit-learn has no DeLong variance; this is the structural-components
    form (DeLong et al. 1988) using midranks for ties."""
    y, p = _check(y_true, prob)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    # placement values: V10[i] = P(neg < pos_i) + 0.5 P(tie), V01[j] = P(pos > neg_j) + 0.5 P(tie)
    v10 = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean(1)
    v01 = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean(0)
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    half = norm.ppf(0.5 + level / 2) * math.sqrt(max(var, 0.0))
    return auc, float(max(0.0, auc - half)), float(min(1.0, auc + half))


def binary_classification_metrics(y_true, prob, threshold: float = 0.5) -> dict:
    """Table-2 metrics of papers 000 and 001 at ``threshold`` (``ppv`` is ``precision``; a ratio
    with an empty denominator is 0) plus AUC with its 95 % DeLong CI."""
    y, p = _check(y_true, prob)
    call = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, call, labels=[0, 1]).ravel()

    def ratio(a, b):
        return float(a / b) if b else 0.0

    sens, prec = ratio(tp, tp + fn), ratio(tp, tp + fp)
    auc, lo, hi = delong_auc_ci(y, p)
    return {"n": int(len(y)), "n_pos": int(y.sum()), "threshold": threshold,
            "accuracy": ratio(tp + tn, len(y)), "precision": prec, "sensitivity": sens,
            "specificity": ratio(tn, tn + fp), "f1": ratio(2 * prec * sens, prec + sens),
            "ppv": prec, "npv": ratio(tn, tn + fn),
            "auc": auc, "auc_ci95": [lo, hi], "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)}


#: Paper 001's Table 2 columns (AUC with its 95 % CI, then the rates at the threshold) and the keys of
#: :func:`binary_classification_metrics` they come from; also the axes of Figure 6's radar chart.
TABLE2_COLUMNS: dict[str, str] = {"AUC": "auc", "ACC": "accuracy", "SEN": "sensitivity", "SPE": "specificity",
                                  "PPV": "ppv", "NPV": "npv"}


def table2_row(model: str, metrics: Mapping, cohort: str = "") -> dict:
    """One row of paper 001's Table 2 from :func:`binary_classification_metrics`: model, cohort, AUC,
    its 95 % CI (``AUC_CI95_low``/``_high``), ACC, SEN, SPE, PPV, NPV (rounded to 4 decimals as the paper)."""
    row: dict = {"model": model}
    if cohort:
        row["cohort"] = cohort
    for col, key in TABLE2_COLUMNS.items():
        row[col] = round(float(metrics[key]), 4)
        if col == "AUC":
            row["AUC_CI95_low"], row["AUC_CI95_high"] = (round(float(v), 4) for v in metrics["auc_ci95"])
    return row


def roc_points(y_true, prob) -> dict[str, np.ndarray]:
    """ROC curve: false-positive rate, true-positive rate and the thresholds giving them (a case is
    called positive when its probability is >= the threshold; the first threshold is infinite: no
    case positive)."""
    y, p = _check(y_true, prob)
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thr}


def calibration(y_true, prob, n_bins: int = 10, strategy: str = "uniform") -> dict:
    """Calibration curve (scikit-learn's ``calibration_curve``: observed fraction of positives and mean
    predicted probability per non-empty bin) and the Brier score, mean((p - y)^2)."""
    y, p = _check(y_true, prob)
    if not ((p >= 0) & (p <= 1)).all():
        raise InputError("Probabilities must lie in [0, 1] for a calibration curve.")
    frac, mean_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    return {"prob_true": frac, "prob_pred": mean_pred, "brier": float(brier_score_loss(y, p)),
            "n_bins": n_bins, "strategy": strategy}


#: Threshold probabilities of a decision curve by default: 0.01 to 0.99 in steps of 0.01.
DCA_THRESHOLDS = np.round(np.arange(1, 100) / 100, 2)


def decision_curve(y_true, prob, thresholds: Sequence[float] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Decision curve analysis (Vickers & Elkin 2006): at each threshold probability pt, the model's
    net benefit TP/n - FP/n * pt / (1 - pt) (treating cases with probability >= pt), treat-all's
    prevalence - (1 - prevalence) * pt / (1 - pt), and treat-none's 0.

    Written here: scikit-learn has no decision curve, and the formula is one line per strategy."""
    y, p = _check(y_true, prob)
    pt = DCA_THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=float)
    if pt.ndim != 1 or not len(pt) or not ((pt > 0) & (pt < 1)).all():
        raise InputError("Decision-curve thresholds must be probabilities strictly between 0 and 1.")
    n = len(y)
    odds = pt / (1 - pt)
    treated = p[None, :] >= pt[:, None]                               # (thresholds, cases)
    tp = (treated & (y[None, :] == 1)).sum(1)
    fp = (treated & (y[None, :] == 0)).sum(1)
    prevalence = y.mean()
    return {"thresholds": pt, "model": tp / n - fp / n * odds,
            "treat_all": prevalence - (1 - prevalence) * odds, "treat_none": np.zeros_like(pt)}


def radar_data(metrics_by_model: Mapping[str, Mapping]) -> tuple[list[str], dict[str, list[float]]]:
    """Axes and per-model values of paper 001's Figure 6 radar chart (AUC, ACC, SEN, SPE, PPV, NPV)
    from each model's :func:`binary_classification_metrics`."""
    if not metrics_by_model:
        raise InputError("A radar chart needs at least one model's metrics.")
    axes = list(TABLE2_COLUMNS)
    return axes, {name: [float(m[TABLE2_COLUMNS[a]]) for a in axes] for name, m in metrics_by_model.items()}


def mean_sd(runs: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample SD of each metric over repeated runs (the paper's mean +- SD)."""
    if not runs:
        raise InputError("mean_sd needs at least one run.")
    keys = [k for k in runs[0] if all(isinstance(r.get(k), (int, float)) for r in runs)]
    out = {}
    for k in keys:
        v = np.array([float(r[k]) for r in runs])
        out[k] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    return out
