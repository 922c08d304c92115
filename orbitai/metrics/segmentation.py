"""Segmentation metrics exactly as the papers define them.

Overlap (paper 002, SV-net, Eqs. 3-6, with R = prediction and R' = ground truth)::

    IoU(R, R') = |R ∩ R'| / |R ∪ R'|
    SP(R, R')  = |R ∩ R'| / |R'|      (the paper's "specificity": overlap over the truth)
    SN(R, R')  = |R ∩ R'| / |R|       (the paper's "sensitivity": overlap over the prediction)

Note that the paper's SP and SN are what is elsewhere called recall and precision; we keep
the paper's names and formulas so figures are comparable with its tables.

Paper 004 (SEQ-UNET): Dice = 2TP / (2TP + FP + FN), volume similarity
VS = 1 - |FN - FP| / (2TP + FP + FN).

Volume agreement over a cohort (paper 002): Pearson R, MAE, RMSE and relative error (%).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


def _binary(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"Prediction shape {a.shape} and ground-truth shape {b.shape} differ; "
                         "resample one onto the other's grid first.")
    return a.astype(bool), b.astype(bool)


@dataclass(frozen=True)
class Overlap:
    """Confusion counts of a binary prediction against a binary truth."""

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray) -> "Overlap":
        p, t = _binary(pred, truth)
        tp = int(np.count_nonzero(p & t))
        fp = int(np.count_nonzero(p & ~t))
        fn = int(np.count_nonzero(~p & t))
        return cls(tp, fp, fn, int(p.size - tp - fp - fn))

    @staticmethod
    def _ratio(num: float, den: float) -> float:
        # Both empty counts as perfect agreement; an empty denominator otherwise as 0.
        return 1.0 if den == 0 and num == 0 else (num / den if den else 0.0)

    @property
    def iou(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    @property
    def dice(self) -> float:
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def paper_sp(self) -> float:
        """SV-net Eq. 4: |R ∩ R'| / |R'| (over the truth)."""
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def paper_sn(self) -> float:
        """SV-net Eq. 5: |R ∩ R'| / |R| (over the prediction)."""
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def volume_similarity(self) -> float:
        """SEQ-UNET: 1 - |FN - FP| / (2TP + FP + FN)."""
        den = 2 * self.tp + self.fp + self.fn
        return 1.0 if den == 0 else 1.0 - abs(self.fn - self.fp) / den


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    return Overlap.of(pred, truth).dice


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    return Overlap.of(pred, truth).iou


def volume_cm3(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume of a binary mask in cm^3 from the voxel spacing in mm."""
    return float(np.count_nonzero(mask)) * float(np.prod(spacing)) / 1000.0


def per_label_metrics(pred: np.ndarray, truth: np.ndarray, labels: Mapping[int, str],
                      spacing: Sequence[float]) -> dict[str, dict[str, float]]:
    """Per label name: IoU, Dice, paper SP/SN, VS and both volumes (cm^3)."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"Prediction shape {pred.shape} and ground-truth shape {truth.shape} differ.")
    out = {}
    for value, name in labels.items():
        p, t = pred == value, truth == value
        o = Overlap.of(p, t)
        out[name] = {
            "iou": o.iou, "dice": o.dice, "sp": o.paper_sp, "sn": o.paper_sn,
            "vs": o.volume_similarity,
            "volume_pred_cm3": volume_cm3(p, spacing), "volume_true_cm3": volume_cm3(t, spacing),
        }
    return out


def volume_agreement(pred_cm3: Sequence[float], true_cm3: Sequence[float]) -> dict[str, float]:
    """Cohort agreement of volumes: Pearson R (and p), MAE, RMSE (cm^3), mean relative error (%)."""
    from scipy import stats

    p, t = np.asarray(pred_cm3, float), np.asarray(true_cm3, float)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError("Volume lists must be 1D and of equal length.")
    if len(p) < 2:
        raise ValueError("Volume agreement needs at least two cases.")
    err = p - t
    if np.std(p) > 0 and np.std(t) > 0:
        r, pval = stats.pearsonr(p, t)
    else:
        r, pval = float("nan"), float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(t > 0, np.abs(err) / t * 100.0, np.nan)
    return {
        "pearson_r": float(r), "pearson_p": float(pval),
        "mae_cm3": float(np.mean(np.abs(err))), "rmse_cm3": float(np.sqrt(np.mean(err ** 2))),
        "relative_error_pct": float(np.nanmean(rel)),
    }

