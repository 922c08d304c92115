"""95 % intervals of figures measured on a cohort, so that every figure can be quoted with its cohort size.

* :func:`bootstrap_ci`: percentile bootstrap over cases (``scipy.stats.bootstrap``) of any statistic of
  per-case values (mean Dice, mean IoU, ...);
* :func:`auc_ci`: stratified bootstrap of the ROC AUC (positives and negatives resampled separately, so
  every resample keeps the cohort's class counts); :func:`auc_difference_ci`: the same, paired, for the
  difference of two models' AUCs on the same cases;
* :func:`paired_bootstrap_ci`: percentile bootstrap of a statistic of several per-case arrays resampled
  together (e.g. F1 from labels and calls);
* :func:`wilson_ci`: Wilson score interval of a proportion (accuracy, sensitivity, specificity, PPV,
  NPV), and :func:`rate_cis` for all of them at a threshold.

Defaults: 95 %, 2000 resamples, seed 0 (the same data give the same interval). Each returns an
:class:`Interval` (estimate, low, high, n).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple

import numpy as np
from scipy import stats

from orbitai.errors import InputError

LEVEL = 0.95
N_RESAMPLES = 2000
SEED = 0


class Interval(NamedTuple):
    """An estimate, its ``level`` interval [low, high] and the number of cases ``n`` it rests on."""

    estimate: float
    low: float
    high: float
    n: int

    def bounds(self, digits: int = 4) -> list[float]:
        """[low, high], rounded: the ``*_ci95`` value of a result file."""
        return [round(float(self.low), digits), round(float(self.high), digits)]

    def text(self, digits: int = 3) -> str:
        """``"0.924 (0.860-0.989)"``."""
        return f"{self.estimate:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def _rng_argument(seed: int) -> dict[str, Any]:
    """scipy >= 1.15 takes ``rng``; older releases (Slicer 5.8's) ``random_state``."""
    gen = np.random.default_rng(seed)
    return {"rng": gen} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": gen}


def _bootstrap(data: tuple[np.ndarray, ...], statistic: Callable[..., Any], *, level: float, n_resamples: int,
               seed: int, vectorized: bool, paired: bool = False) -> tuple[float, float]:
    res = stats.bootstrap(data, statistic, n_resamples=n_resamples, vectorized=vectorized, paired=paired,
                          confidence_level=level, method="percentile", batch=250, **_rng_argument(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_ci(values, statistic: Callable[..., Any] = np.mean, *, level: float = LEVEL,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Interval:
    """Percentile bootstrap interval of ``statistic`` (default: the mean) of per-case ``values``.

    ``statistic`` must accept ``axis`` (as numpy's reductions do). At least two finite values; all equal
    give a zero-width interval."""
    v = np.asarray(values, dtype=float).ravel()
    if len(v) < 2 or not np.all(np.isfinite(v)):
        raise InputError(f"A bootstrap interval needs at least two finite values, got {v.tolist()[:8]}.")
    est = float(statistic(v))
    if np.all(v == v[0]):
        return Interval(est, est, est, len(v))
    lo, hi = _bootstrap((v,), statistic, level=level, n_resamples=n_resamples, seed=seed, vectorized=True)
    return Interval(est, lo, hi, len(v))


def paired_bootstrap_ci(statistic: Callable[..., float], *arrays, level: float = LEVEL,
                        n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Interval:
    """Percentile bootstrap interval of ``statistic(*arrays)``, the per-case ``arrays`` (equal lengths, at least
    two cases) resampled together by case; ``statistic`` takes the arrays of one resample."""
    data = tuple(np.asarray(a).ravel() for a in arrays)
    if not data or len({len(a) for a in data}) != 1 or len(data[0]) < 2:
        raise InputError("A paired bootstrap interval needs per-case arrays of one length, at least two cases.")
    est = float(statistic(*data))
    lo, hi = _bootstrap(data, statistic, level=level, n_resamples=n_resamples, seed=seed, vectorized=False,
                        paired=True)
    return Interval(est, lo, hi, len(data[0]))


def _labels_scores(y_true, *probs) -> tuple[np.ndarray, list[np.ndarray]]:
    y = np.asarray(y_true).astype(int).ravel()
    ps = [np.asarray(p, dtype=float).ravel() for p in probs]
    if any(p.shape != y.shape for p in ps) or not np.isin(y, (0, 1)).all():
        raise InputError("Labels must be 0 or 1, one per probability.")
    if min(int(y.sum()), int(len(y) - y.sum())) < 2:
        raise InputError("An AUC interval needs at least two cases of each class.")
    return y, ps


def _auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC over the last two axes: P(pos > neg) + P(tie) / 2."""
    d = pos[..., :, None] - neg[..., None, :]
    return ((d > 0) + 0.5 * (d == 0)).mean(axis=(-2, -1))


def auc_ci(y_true, prob, *, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> Interval:
    """ROC AUC and its stratified percentile-bootstrap interval (``n``: cases)."""
    y, (p,) = _labels_scores(y_true, prob)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def statistic(i, j, axis=-1):
        return _auc(p[i], p[j])

    lo, hi = _bootstrap((pos, neg), statistic, level=level, n_resamples=n_resamples, seed=seed, vectorized=True)
    return Interval(float(_auc(p[pos], p[neg])), lo, hi, len(y))


def auc_difference_ci(y_true, prob_a, prob_b, *, level: float = LEVEL, n_resamples: int = N_RESAMPLES,
                      seed: int = SEED) -> Interval:
    """AUC of ``prob_a`` minus AUC of ``prob_b`` on the same cases, with its paired stratified
    percentile-bootstrap interval (each resample draws cases, and scores both models on them)."""
    y, (a, b) = _labels_scores(y_true, prob_a, prob_b)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    def statistic(i, j, axis=-1):
        return _auc(a[i], a[j]) - _auc(b[i], b[j])

    lo, hi = _bootstrap((pos, neg), statistic, level=level, n_resamples=n_resamples, seed=seed, vectorized=True)
    return Interval(float(_auc(a[pos], a[neg]) - _auc(b[pos], b[neg])), lo, hi, len(y))


def wilson_ci(successes: int, n: int, *, level: float = LEVEL) -> Interval:
    """``successes / n`` and its Wilson score interval (scipy's ``binomtest``); n = 0 gives NaN."""
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Interval(successes / n, float(ci.low), float(ci.high), int(n))


def rate_cis(y_true, prob, threshold: float = 0.5, *, level: float = LEVEL) -> dict[str, Interval]:
    """Wilson intervals of the rates at ``threshold`` (a case is called positive when ``prob >= threshold``,
    as :func:`orbitai.metrics.classification.binary_classification_metrics`): accuracy, sensitivity,
    specificity, precision (= PPV) and NPV; each ``n`` is its denominator."""
    y = np.asarray(y_true).astype(int).ravel()
    call = (np.asarray(prob, dtype=float).ravel() >= threshold).astype(int)
    tp, tn = int(((call == 1) & (y == 1)).sum()), int(((call == 0) & (y == 0)).sum())
    fp, fn = int(((call == 1) & (y == 0)).sum()), int(((call == 0) & (y == 1)).sum())
    out = {"accuracy": wilson_ci(tp + tn, len(y), level=level), "sensitivity": wilson_ci(tp, tp + fn, level=level),
           "specificity": wilson_ci(tn, tn + fp, level=level), "precision": wilson_ci(tp, tp + fp, level=level),
           "npv": wilson_ci(tn, tn + fn, level=level)}
    out["ppv"] = out["precision"]
    return out
