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
from scipy import ndimage as ndi
from scipy import stats

from orbitai.errors import InputError


def _binary(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"Prediction shape {a.shape} and ground-truth shape {b.shape} differ; "
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
        raise InputError(f"Prediction shape {pred.shape} and ground-truth shape {truth.shape} differ.")
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
    p, t = np.asarray(pred_cm3, float), np.asarray(true_cm3, float)
    if p.shape != t.shape or p.ndim != 1:
        raise InputError("Volume lists must be 1D and of equal length.")
    if len(p) < 2:
        raise InputError("Volume agreement needs at least two cases.")
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



# ------------------------------------------------------------------ lesion-wise measures
# As lesion-segmentation challenges (MSSEG, WMH) count them: a lesion is a 26-connected component;
# a true lesion is detected when the prediction overlaps it by at least one voxel; a predicted
# component is a false positive when it overlaps no true lesion.


def lesion_components(mask: np.ndarray, min_voxels: int = 1) -> tuple[np.ndarray, int]:
    """26-connected components of a binary mask (labels 1..n), components under ``min_voxels`` dropped."""
    lab, n = ndi.label(np.asarray(mask, bool), np.ones((3, 3, 3), bool))
    if min_voxels > 1 and n:
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        keep = sizes >= min_voxels
        keep[0] = False
        lab, n = ndi.label(keep[lab], np.ones((3, 3, 3), bool))
    return lab, int(n)


@dataclass(frozen=True)
class LesionDetection:
    """Lesion-wise detection counts of a prediction against a truth."""

    n_true: int          # true lesions
    n_pred: int          # predicted components
    detected: int        # true lesions overlapped by the prediction
    true_positive_pred: int  # predicted components overlapping a true lesion
    false_positive: int  # predicted components overlapping no true lesion

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray, min_voxels: int = 1) -> "LesionDetection":
        p, t = _binary(pred, truth)
        lt, nt = lesion_components(t, min_voxels)
        lp, n_p = lesion_components(p, min_voxels)
        det = np.unique(lt[(lt > 0) & p]).size
        tpp = np.unique(lp[(lp > 0) & t]).size
        return cls(nt, n_p, int(det), int(tpp), int(n_p - tpp))

    @property
    def recall(self) -> float:
        """Lesion-wise sensitivity: detected / true lesions (1 when there are none)."""
        return self.detected / self.n_true if self.n_true else 1.0

    @property
    def precision(self) -> float:
        """Lesion-wise precision: predicted components on a true lesion / all predicted (1 when none)."""
        return self.true_positive_pred / self.n_pred if self.n_pred else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of lesion-wise precision and recall (1 when both masks are empty)."""
        if self.n_true == 0 and self.n_pred == 0:
            return 1.0
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def lesion_f1(pred: np.ndarray, truth: np.ndarray, min_voxels: int = 1) -> float:
    return LesionDetection.of(pred, truth, min_voxels).f1


def absolute_volume_difference(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """|V_pred - V_true| in mL and, as the WMH challenge reports it, in % of V_true (nan when V_true = 0)."""
    p, t = _binary(pred, truth)
    vp, vt = volume_cm3(p, spacing), volume_cm3(t, spacing)
    return {"volume_pred_ml": vp, "volume_true_ml": vt, "avd_ml": abs(vp - vt),
            "avd_percent": abs(vp - vt) / vt * 100.0 if vt > 0 else float("nan")}


#: true lesions are split at this volume (mm3) for the recall by size (issue 79's lesion-wise reporting)
SMALL_LESION_MM3 = 10.0


def recall_by_size(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
                   split_mm3: float = SMALL_LESION_MM3) -> dict[str, float]:
    """Recall of the true lesions of at least ``split_mm3`` and of the smaller ones, with their counts (a recall is
    nan where there is no such lesion)."""
    p, t = _binary(pred, truth)
    lt, nt = lesion_components(t)
    mm3 = np.bincount(lt.ravel(), minlength=nt + 1)[1:] * float(np.prod(spacing))
    hit = np.zeros(nt + 1, bool)
    hit[np.unique(lt[(lt > 0) & p])] = True
    out: dict[str, float] = {}
    for name, sel in (("ge", mm3 >= split_mm3), ("lt", mm3 < split_mm3)):
        n = int(sel.sum())
        out[f"n_true_{name}_10mm3"] = float(n)
        out[f"recall_{name}_10mm3"] = float(hit[1:][sel].mean()) if n else float("nan")
    return out


def lesion_metrics(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
                   min_voxels: int = 1) -> dict[str, float]:
    """Voxel Dice, lesion-wise precision/recall/F1 and counts, the recall of lesions >= and < 10 mm3
    (:func:`recall_by_size`), absolute volume difference."""
    d = LesionDetection.of(pred, truth, min_voxels)
    return {"dice": dice(pred, truth), "lesion_f1": d.f1, "lesion_precision": d.precision,
            "lesion_recall": d.recall, "n_true": d.n_true, "n_pred": d.n_pred, "detected": d.detected,
            "false_positive": d.false_positive, **recall_by_size(pred, truth, spacing),
            **absolute_volume_difference(pred, truth, spacing)}
