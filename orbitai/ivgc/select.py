"""Paper 001's radiomics feature selection per ROI strategy: reproducibility (ICC between two
segmentations), independent-sample t-test between responders and non-responders, LASSO.

The steps are :mod:`orbitai.radiomics.select`'s (``icc``, ``selection_pipeline``); this module
runs them per strategy on a feature table and records what each step kept, the LASSO
coefficients of the selected features and the standardisation they apply to, as JSON that a
model bundle stores. ICC: two-way random effects, absolute agreement, single measures (ICC(2,1)
of Shrout & Fleiss 1979), written out in ``orbitai.radiomics.select.icc`` because the library
that has it (pingouin) is GPL-licensed.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from orbitai.errors import InputError, UserError
from orbitai.ivgc.data import case_label
from orbitai.radiomics.select import icc, selection_pipeline
from orbitai.staging import write_json_atomic


@dataclass(frozen=True)
class SelectionSettings:
    icc_threshold: float = 0.75
    alpha: float = 0.05
    lasso: Literal["linear", "logistic"] = "linear"
    cv: int = 5
    seed: int = 0

    def check(self) -> None:
        """Refuse impossible settings in one line (before any work)."""
        if not -1.0 <= self.icc_threshold <= 1.0:
            raise UserError(f"--icc must lie in [-1, 1], got {self.icc_threshold}.")
        if not 0.0 < self.alpha <= 1.0:
            raise UserError(f"--alpha must lie in (0, 1], got {self.alpha}.")
        if self.cv < 2:
            raise UserError(f"--cv must be at least 2, got {self.cv}.")
        if self.seed < 0:
            raise UserError(f"--seed must be 0 or more, got {self.seed}.")


def select_strategy(names: Sequence[str], X: np.ndarray, X_repeat: np.ndarray, y: np.ndarray,
                    settings: SelectionSettings = SelectionSettings()) -> dict[str, Any]:
    """One strategy's selection: ``X`` (cases x features), ``X_repeat`` the same cases' features from
    the second segmentation (the ICC subset: its rows pair with the first rows of ``X``), ``y`` 0/1."""
    names = list(names)
    finite = np.isfinite(X).all(axis=0) & np.isfinite(X_repeat).all(axis=0)
    values = icc(X[: len(X_repeat)], X_repeat, "ICC2")
    icc_ok = finite & (np.nan_to_num(values, nan=-np.inf) >= settings.icc_threshold)
    icc_kept = [n for n, k in zip(names, icc_ok) if k]
    out: dict[str, Any] = {"n_features": len(names), "n_nonfinite": int((~finite).sum()), "icc_kept": icc_kept,
                           "ttest_kept": [], "selected": [], "coefficients": {}, "intercept": None,
                           "mean": {}, "scale": {}, "icc": {}, "p_value": {}, "lasso_alpha": None}
    check_classes(y, settings)
    if not icc_kept:
        out["note"] = f"no feature reached ICC >= {settings.icc_threshold}"
        return out
    Xk = X[:, icc_ok]
    pipe = selection_pipeline(alpha=settings.alpha, test="ttest", lasso=settings.lasso, cv=settings.cv,
                              random_state=settings.seed)
    scale, uni = pipe.named_steps["scale"], pipe.named_steps["univariate"]
    Z = scale.fit_transform(Xk)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        uni.fit(Z, y)
    p = np.asarray(uni.pvalues_)
    t_ok = uni.get_support()
    out["ttest_kept"] = [n for n, k in zip(icc_kept, t_ok) if k]
    if not t_ok.any():
        out["note"] = f"no reproducible feature had t-test p < {settings.alpha}"
        return out
    lasso = pipe.named_steps["lasso"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lasso.fit(Z[:, t_ok], y)
    est = lasso.estimator_
    coef = np.ravel(est.coef_)
    chosen = lasso.get_support()
    kept_names = out["ttest_kept"]
    idx_icc = {n: i for i, n in enumerate(icc_kept)}
    idx_all = {n: i for i, n in enumerate(names)}
    selected = [n for n, k in zip(kept_names, chosen) if k]
    out["selected"] = selected
    out["coefficients"] = {n: float(c) for n, c, k in zip(kept_names, coef, chosen) if k}
    out["intercept"] = float(np.ravel(est.intercept_)[0])
    out["mean"] = {n: float(scale.mean_[idx_icc[n]]) for n in selected}
    out["scale"] = {n: float(scale.scale_[idx_icc[n]]) for n in selected}
    out["icc"] = {n: float(values[idx_all[n]]) for n in selected}
    out["p_value"] = {n: float(p[idx_icc[n]]) for n in selected}
    alpha_ = getattr(est, "alpha_", None)
    out["lasso_alpha"] = None if alpha_ is None else float(alpha_)
    if not selected:
        out["note"] = "LASSO kept no feature (every coefficient zero at the cross-validated penalty)"
    return out


def check_classes(y: np.ndarray, settings: SelectionSettings) -> None:
    """Refuse labels too few per class for LASSO's cross-validation (InputError with the counts)."""
    counts = np.bincount(np.asarray(y, dtype=int), minlength=2)
    if counts.min() < settings.cv:
        raise InputError(f"LASSO's {settings.cv}-fold cross-validation needs at least {settings.cv} cases of each "
                         f"class; the manifest has {counts[0]} non-responders and {counts[1]} responders.")


def check_cohort(cases: Sequence[Any], table: Any, strategies: Sequence[str], settings: SelectionSettings) -> None:
    """What :func:`select_cohort` needs of the manifest and the first table, checked before the second
    segmentation's features are extracted (the slow step): every label, enough cases of each class, a row
    for every case and the features of every strategy."""
    check_classes(np.array([case_label(c) for c in cases], dtype=int), settings)
    table.rows([c.case_id for c in cases])
    for s in strategies:
        if not table.columns(s)[0]:
            raise InputError(f"The feature table has no feature of ROI strategy {s!r}; extract it with "
                             f"'orbitai ivgc features --strategies {s}'.")


def select_cohort(cases: Sequence[Any], table: Any, repeat: Any, strategies: Sequence[str],
                  settings: SelectionSettings = SelectionSettings()) -> dict[str, Any]:
    """Selection per strategy for the manifest's ``cases`` (labels from their ``label`` column) with
    feature tables ``table`` and ``repeat`` (:class:`orbitai.ivgc.features.WideTable`)."""
    ids = [c.case_id for c in cases]
    y = np.array([case_label(c) for c in cases], dtype=int)
    both = [c for c in ids if c in set(repeat.case_ids)]
    if len(both) < 3:
        raise InputError(f"The ICC needs at least 3 cases with both segmentations' features; {len(both)} have them.")
    X_all = table.rows(ids)
    order = {c: i for i, c in enumerate(ids)}
    first = np.array([order[c] for c in both] + [i for i, c in enumerate(ids) if c not in set(both)])
    X_rep_all = repeat.rows(both)
    doc: dict[str, Any] = {"task": "ivgc-select", "settings": {**asdict(settings), "icc_form": "ICC(2,1)",
                                                               "test": "independent-sample t-test"},
                           "cases": len(ids), "icc_cases": len(both),
                           "responders": int(y.sum()), "non_responders": int((1 - y).sum()), "strategies": {}}
    for s in strategies:
        names, _ = table.columns(s)
        if not names:
            raise InputError(f"The feature table has no feature of ROI strategy {s!r}; extract it with "
                             f"'orbitai ivgc features --strategies {s}'.")
        rep_names, _ = repeat.columns(s)
        if rep_names != names:
            raise InputError(f"The second segmentation's table has other {s!r} features than the first; extract both "
                             "with the same protocol.")
        cols = [table.names.index(n) for n in names]
        rcols = [repeat.names.index(n) for n in names]
        X = X_all[first][:, cols]
        doc["strategies"][s] = select_strategy(names, X, X_rep_all[:, rcols], y[first], settings)
    return doc


def write_selection(doc: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the selection JSON atomically."""
    return write_json_atomic(path, doc)


def read_selection(path: str | os.PathLike) -> dict[str, Any]:
    """A selection written by :func:`write_selection` (InputError when it is not one)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot read the feature selection {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("task") != "ivgc-select":
        raise InputError(f"{path} is not a feature selection of 'orbitai ivgc select'.")
    return doc
