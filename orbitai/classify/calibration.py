"""Calibrated probabilities of a classifier's logits (issue 51), and how calibrated they are.

Temperature scaling (Guo et al., ICML 2017) fitted on a validation split by minimising the negative log-likelihood,
or for a two-class model temperature and a bias on the second class's logit (Platt scaling of the logit difference: a
temperature alone cannot move a model whose probabilities lean to one class), or none: the one of the three with the
lowest 5-fold cross-validated negative log-likelihood on the validation split (:func:`fit_calibration`; on a nearly
separable validation set the bias alone overfits). The expected calibration error (15 equal-width bins of the
top-class probability) before and after, and what a perfectly calibrated model's would read on as many cases
(:func:`ece_floor`). Stored in the bundle with the out-of-distribution statistics: `orbitai.classify.trust.Trust`.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.model_selection import StratifiedKFold

CALIBRATIONS = ("none", "temperature", "temperature+bias")
ECE_BINS = 15


def binary_logits(p: np.ndarray) -> np.ndarray:
    """Two-class logits (log(1 - p), log p) of probabilities of the second class (a model that gives only
    probabilities, such as the radiomics SVM); their softmax is ``p`` again."""
    q = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.stack([np.log1p(-q), np.log(q)], 1)


def softmax(logits: np.ndarray, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """Softmax of ``logits / temperature``, ``bias`` added to the second class's (two-class models)."""
    z = np.array(logits, np.float64) / temperature
    if bias:
        z[:, 1] += bias
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The reliability diagram's bins (equal width over the top-class probability): each non-empty bin's range,
    cases, mean confidence and accuracy."""
    conf, right = probs.max(1), probs.argmax(1) == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            out.append({"from": round(float(lo), 4), "to": round(float(hi), 4), "cases": int(inside.sum()),
                        "confidence": float(conf[inside].mean()), "accuracy": float(right[inside].mean())})
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-class probability: the bin-size-weighted mean |accuracy - confidence| over equal-width bins."""
    n = len(np.asarray(labels))
    return float(sum(b["cases"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability(probs, labels, bins)))


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float, bias: float) -> float:
    p = softmax(logits, temperature, bias)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))))


def _fit(logits: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    """(temperature, bias) of one calibration method minimising the negative log-likelihood (temperature bounded to
    0.05-20, bias to +-10)."""
    if method == "none":
        return 1.0, 0.0
    with_bias = method == "temperature+bias"
    bounds = [(np.log(0.05), np.log(20.0))] + [(-10.0, 10.0)] * with_bias
    v = minimize(lambda v: _nll(logits, y, float(np.exp(v[0])), float(v[1]) if with_bias else 0.0),
                 np.zeros(1 + with_bias), method="L-BFGS-B", bounds=bounds).x
    return float(np.exp(v[0])), float(v[1]) if with_bias else 0.0


def ece_floor(probs: np.ndarray, draws: int = 1000, seed: int = 0) -> dict[str, float]:
    """What a perfectly calibrated model's ECE would read on this many cases: the ECE of ``probs`` against labels
    drawn from ``probs`` themselves, over ``draws`` draws (mean and 95th percentile). On a few hundred cases with
    probabilities away from 0 and 1 the floor is several hundredths: an ECE within it cannot be told from perfect
    calibration on that set."""
    rng = np.random.default_rng(seed)
    p = np.asarray(probs, np.float64)
    cum = np.cumsum(p, 1)
    values = [expected_calibration_error(p, (rng.random((len(p), 1)) > cum[:, :-1]).sum(1)) for _ in range(draws)]
    return {"mean": float(np.mean(values)), "p95": float(np.quantile(values, 0.95))}


def fit_calibration(logits: np.ndarray, labels: np.ndarray, folds: int = 5) -> tuple[float, float, str]:
    """(temperature, bias, method): of the methods of :data:`CALIBRATIONS` (the bias only for two classes), the one
    with the lowest ``folds``-fold cross-validated negative log-likelihood of ``labels``, refitted on all of them."""
    y = np.asarray(labels, int)
    logits = np.asarray(logits, np.float64)
    methods = CALIBRATIONS if logits.shape[1] == 2 else CALIBRATIONS[:2]
    k = min(folds, int(np.bincount(y).min()) if len(set(y.tolist())) > 1 else 0)
    if k < 2:           # too few cases of a class to cross-validate: temperature alone
        return (*_fit(logits, y, "temperature"), "temperature")
    split = list(StratifiedKFold(k, shuffle=True, random_state=0).split(logits, y))
    scores = {m: np.mean([_nll(logits[te], y[te], *_fit(logits[tr], y[tr], m)) for tr, te in split]) for m in methods}
    best = min(methods, key=lambda m: scores[m])
    return (*_fit(logits, y, best), best)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature alone (no bias) minimising the negative log-likelihood of ``labels``."""
    return _fit(np.asarray(logits, np.float64), np.asarray(labels, int), "temperature")[0]

