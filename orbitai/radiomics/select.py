"""Radiomics feature selection as paper 001 does it, in scikit-learn form: reproducibility between
two readers' masks (ICC), a univariate test between the outcome groups (t-test or Mann-Whitney U),
then LASSO.

- :func:`icc` and :class:`ReproducibilitySelector` (fit with the second reader's features as
  ``X_repeat``; in a pipeline pass ``<step>__X_repeat``, or fit it once on the reproducibility
  subset and freeze it with ``sklearn.frozen.FrozenEstimator``);
- :func:`ttest_score`, :func:`mannwhitney_score`: score functions for ``SelectFpr``/``SelectKBest``;
- :func:`lasso_selector`: ``SelectFromModel`` over ``LassoCV`` or L1 ``LogisticRegressionCV``;
- :func:`selection_pipeline`: standardise, univariate test, LASSO; ``get_feature_names_out(names)``
  names the kept features.
"""
from __future__ import annotations

import inspect
from typing import Literal, Optional

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectFpr, SelectFromModel, SelectorMixin
from sklearn.linear_model import LassoCV, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from orbitai.errors import InputError

IccForm = Literal["ICC1", "ICC2", "ICC3"]


def icc(a: np.ndarray, b: Optional[np.ndarray] = None, form: IccForm = "ICC2") -> np.ndarray:
    """Intraclass correlation per feature (Shrout & Fleiss 1979, single measures).

    ``a`` and ``b``: (subjects, features) from two readers, or ``a`` alone as (subjects, raters,
    features). ``ICC1``: one-way random; ``ICC2``: two-way random, absolute agreement (the usual
    inter-reader choice for radiomics); ``ICC3``: two-way mixed, consistency. A feature with no
    variance at all gets NaN.

    Written out (two-way ANOVA mean squares) because the Python library that has it, pingouin, is
    GPL-licensed; tested against Shrout & Fleiss's published worked example.
    """
    x = np.stack([np.asarray(a, float), np.asarray(b, float)], axis=1) if b is not None else np.asarray(a, float)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise InputError(f"ICC needs at least two subjects rated by at least two readers; got shape {x.shape}.")
    n, k = x.shape[:2]
    grand = x.mean(axis=(0, 1))
    rows, cols = x.mean(axis=1), x.mean(axis=0)
    ss_rows = k * ((rows - grand) ** 2).sum(0)
    ss_cols = n * ((cols - grand) ** 2).sum(0)
    ss_err = ((x - rows[:, None] - cols[None] + grand) ** 2).sum(axis=(0, 1))
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        if form == "ICC1":
            msw = (ss_cols + ss_err) / (n * (k - 1))
            out = (msr - msw) / (msr + (k - 1) * msw)
        elif form == "ICC2":
            out = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        elif form == "ICC3":
            out = (msr - mse) / (msr + (k - 1) * mse)
        else:
            raise InputError(f"Unknown ICC form {form!r}; use 'ICC1', 'ICC2' or 'ICC3'.")
    return np.where(np.isfinite(out), out, np.nan)


class ReproducibilitySelector(SelectorMixin, BaseEstimator):
    """Keeps the features whose ICC between two readers' masks reaches ``threshold``."""

    def __init__(self, threshold: float = 0.75, form: IccForm = "ICC2"):
        self.threshold = threshold
        self.form = form

    def fit(self, X, y=None, X_repeat=None) -> "ReproducibilitySelector":
        if X_repeat is None:
            raise InputError("ReproducibilitySelector.fit needs X_repeat: the same cases' features from the second "
                             "reader's masks.")
        X, X_repeat = np.asarray(X, dtype=float), np.asarray(X_repeat, dtype=float)
        if X.ndim != 2 or X.shape != X_repeat.shape:
            raise InputError(f"X {X.shape} and X_repeat {X_repeat.shape} differ; give both readers' features for "
                             "the same cases and features.")
        self.icc_ = icc(X, X_repeat, self.form)
        self.n_features_in_ = X.shape[1]
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "icc_")
        return np.nan_to_num(self.icc_, nan=-np.inf) >= self.threshold


def _groups(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = check_array(X, dtype=float)
    y = np.asarray(y)
    classes = np.unique(y)
    if len(classes) != 2:
        raise InputError(f"A two-group test needs exactly two outcome classes; got {len(classes)}.")
    return X[y == classes[1]], X[y == classes[0]]


def ttest_score(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(|t|, p) per feature: independent-sample Student t-test between the two classes."""
    a, b = _groups(X, y)
    t, p = stats.ttest_ind(a, b, axis=0)
    return np.abs(t), p


def mannwhitney_score(X, y) -> tuple[np.ndarray, np.ndarray]:
    """(U, p) per feature: two-sided Mann-Whitney U test between the two classes."""
    a, b = _groups(X, y)
    u, p = stats.mannwhitneyu(a, b, axis=0, alternative="two-sided")
    return u, p


def _l1_logistic(cv, random_state: int) -> LogisticRegressionCV:
    params = inspect.signature(LogisticRegressionCV).parameters
    kwargs: dict = {"Cs": 20, "cv": cv, "solver": "liblinear", "scoring": "roc_auc", "random_state": random_state}
    if "use_legacy_attributes" in params:      # scikit-learn >= 1.8: L1 through l1_ratios
        kwargs.update(l1_ratios=(1.0,), use_legacy_attributes=False)
    else:
        kwargs.update(penalty="l1")
    return LogisticRegressionCV(**kwargs)


def lasso_selector(kind: Literal["linear", "logistic"] = "linear", cv: int = 5,
                   random_state: int = 0) -> SelectFromModel:
    """Keeps the features with a non-zero LASSO coefficient; the penalty is chosen by stratified
    ``cv``-fold cross-validation (``linear``: ``LassoCV`` on the 0/1 outcome, as radiomics
    studies usually do; ``logistic``: L1 logistic regression)."""
    folds = StratifiedKFold(cv, shuffle=True, random_state=random_state)
    if kind == "linear":
        return SelectFromModel(LassoCV(cv=folds, random_state=random_state, max_iter=10000))
    if kind == "logistic":
        return SelectFromModel(_l1_logistic(folds, random_state))
    raise InputError(f"Unknown LASSO kind {kind!r}; use 'linear' or 'logistic'.")


def selection_pipeline(alpha: float = 0.05, test: Literal["ttest", "mannwhitney"] = "ttest",
                       lasso: Literal["linear", "logistic"] = "linear", cv: int = 5,
                       random_state: int = 0) -> Pipeline:
    """Standardise, keep features with p < ``alpha`` in the two-group ``test``, then LASSO.
    Put a fitted :class:`ReproducibilitySelector` in front for the ICC step."""
    scores = {"ttest": ttest_score, "mannwhitney": mannwhitney_score}
    if test not in scores:
        raise InputError(f"Unknown test {test!r}; use 'ttest' or 'mannwhitney'.")
    return Pipeline([("scale", StandardScaler()), ("univariate", SelectFpr(scores[test], alpha=alpha)),
                     ("lasso", lasso_selector(lasso, cv, random_state))])
