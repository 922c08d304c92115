"""Cohort splits, all deterministic for a seed, all by index into the caller's list.

* :func:`kfold_split`: the segmentation recipe's folds; :func:`stratified_holdout` /
  :func:`stratified_kfold`: the TAO recipe's test split and folds of cases, every class on both sides
  (checked before any work, with the numbers); :func:`split_by_case`: a plain held-out split of whole cases;
* :func:`grouped_kfold` / :func:`grouped_holdout`: scikit-learn's ``StratifiedGroupKFold`` /
  ``GroupShuffleSplit``, so that every sample of a group (a patient's two eyes, a patient's
  visits) lands on the same side, with the classes balanced across folds when ``y`` is given.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from orbitai.errors import ConfigError


def kfold_split(n: int, folds: int, fold: int, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic k-fold over ``n`` items: (train indices, validation indices) for ``fold``
    (0-based); ``folds`` < 2 puts everything in training."""
    if folds < 2:
        return list(range(n)), []
    if not 0 <= fold < folds:
        raise ConfigError(f"--fold must be in 0..{folds - 1}.")
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(order[fold::folds].tolist())
    return [i for i in range(n) if i not in set(val)], val


def split_by_case(case_ids: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) sample indices, splitting whole cases so no patient is on both sides."""
    uniq = sorted(set(case_ids))
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(uniq)[: int(round(fraction * len(uniq)))].tolist())
    tr = [i for i, c in enumerate(case_ids) if c not in held]
    te = [i for i, c in enumerate(case_ids) if c in held]
    return tr, te


def _check_groups(groups: Sequence[str], y: Sequence[int] | None, parts: int) -> int:
    n_groups = len(set(groups))
    if y is not None and len(y) != len(groups):
        raise ConfigError(f"{len(y)} labels for {len(groups)} samples; give one label per sample.")
    if n_groups < parts:
        raise ConfigError(f"{parts} folds need at least {parts} patients (groups); the cohort has {n_groups}.")
    if y is not None:
        for g in set(groups):
            labels = {int(v) for v, gg in zip(y, groups) if gg == g}
            if len(labels) > 1:
                raise ConfigError(f"Group {g!r} has samples of classes {sorted(labels)}; a stratified grouped "
                                  "split needs one class per group (patient).")
    return n_groups


def grouped_kfold(groups: Sequence[str], folds: int, fold: int, seed: int,
                  y: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
    """(train, validation) indices of ``fold`` (0-based) among ``folds`` folds of whole groups;
    with ``y`` the folds keep the class balance (``StratifiedGroupKFold``, shuffled by ``seed``)."""
    if not 0 <= fold < folds:
        raise ConfigError(f"--fold must be in 0..{folds - 1}.")
    if folds < 2:
        raise ConfigError("A grouped k-fold split needs at least 2 folds.")
    _check_groups(groups, y, folds)
    idx = np.zeros(len(groups))
    if y is not None:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(idx, np.asarray(y), np.asarray(groups)))
    else:
        # GroupKFold does not shuffle: relabel the groups in a seeded random order instead.
        uniq = sorted(set(groups))
        rank = {g: int(r) for g, r in zip(uniq, np.random.default_rng(seed).permutation(len(uniq)))}
        splits = list(GroupKFold(n_splits=folds).split(idx, groups=[rank[g] for g in groups]))
    tr, va = splits[fold]
    return sorted(tr.tolist()), sorted(va.tolist())


def grouped_holdout(groups: Sequence[str], fraction: float, seed: int,
                    y: Sequence[int] | None = None) -> tuple[list[int], list[int]]:
    """(train, held-out) indices holding out about ``fraction`` of the groups; with ``y`` the
    held-out part keeps the class balance (first fold of a ``StratifiedGroupKFold`` with
    ``round(1 / fraction)`` folds), else ``GroupShuffleSplit``."""
    if not 0 < fraction < 1:
        raise ConfigError(f"The held-out fraction must lie between 0 and 1, got {fraction}.")
    idx = np.zeros(len(groups))
    if y is not None:
        folds = max(2, int(round(1 / fraction)))
        _check_groups(groups, y, folds)
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        tr, te = next(splitter.split(idx, np.asarray(y), np.asarray(groups)))
    else:
        _check_groups(groups, None, 2)
        tr, te = next(GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
                      .split(idx, groups=np.asarray(groups)))
    return sorted(tr.tolist()), sorted(te.tolist())


def _class_counts(labels: Sequence[int]) -> str:
    counts = sorted(Counter(int(v) for v in labels).items())
    return ", ".join(f"{n} case{'s' if n != 1 else ''} of label {c}" for c, n in counts) or "no cases"


def stratified_holdout(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices of cases with class ``labels``: ``round(fraction * n)`` cases held out
    with every class on both sides (scikit-learn's stratified ``train_test_split``, seeded). A cohort too
    small or a class too rare for that is a `ConfigError` giving the numbers, raised before any work."""
    n, k = len(labels), len(set(labels))
    if not 0 < fraction < 1:
        raise ConfigError(f"--holdout must be a fraction in [0, 1), got {fraction}.")
    n_held = int(round(fraction * n))
    counts = Counter(labels)
    if k < 2 or n_held < k or n - n_held < k or min(counts.values()) < 2:
        raise ConfigError(f"--holdout {fraction:g} of {n} cases holds out {n_held}; a test split needs each class "
                          f"on both sides (at least 2 cases of each class, {k if k > 1 else 2} held out and as many "
                          f"left for training); the manifest has {_class_counts(labels)}. Give more cases, change "
                          "--holdout, or use --holdout 0 for no test split.")
    tr, te = train_test_split(list(range(n)), test_size=n_held, stratify=list(labels), random_state=seed)
    return sorted(tr), sorted(te)


def check_stratified_folds(labels: Sequence[int], folds: int) -> None:
    """Refuse (`ConfigError` with the numbers) ``folds`` folds that cannot each train and validate on every
    class: a class with fewer cases than folds, or fewer than 2 classes."""
    counts = Counter(labels)
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2 (each fold is evaluated on cases left out), got {folds}.")
    if len(counts) < 2 or min(counts.values()) < folds:
        raise ConfigError(f"--folds {folds} needs at least {folds} cases of each of 2 classes, so that every fold "
                          f"trains and validates on both; the manifest has {_class_counts(labels)}. "
                          "Give more cases or fewer folds.")


def stratified_kfold(labels: Sequence[int], folds: int, fold: int, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices of ``fold`` (0-based) among ``folds`` stratified folds of cases
    (scikit-learn's ``StratifiedKFold``, shuffled by ``seed``); checked by `check_stratified_folds`."""
    check_stratified_folds(labels, folds)
    if not 0 <= fold < folds:
        raise ConfigError(f"--fold must be in 0..{folds - 1}.")
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
                  .split(np.zeros(len(labels)), np.asarray(labels)))
    tr, va = splits[fold]
    return sorted(tr.tolist()), sorted(va.tolist())
