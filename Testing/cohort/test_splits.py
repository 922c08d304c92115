"""orbitai.cohort.splits: the recipes' splits (pinned) and grouped / stratified splits."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.cohort.splits import (
    grouped_holdout,
    grouped_kfold,
    kfold_split,
    split_by_case,
)
from orbitai.errors import ConfigError


def test_recipe_splits_are_unchanged_by_the_move():
    # Values of the implementations in seg/train.py and tao/data.py before they moved here.
    assert kfold_split(10, 5, 0, 0) == ([0, 1, 2, 3, 6, 7, 8, 9], [4, 5])
    assert kfold_split(10, 5, 3, 7) == ([0, 2, 3, 4, 6, 7, 8, 9], [1, 5])
    assert kfold_split(4, 1, 0, 0) == ([0, 1, 2, 3], [])
    assert split_by_case([f"c{i // 2}" for i in range(12)], 0.34, 1) == ([2, 3, 4, 5, 6, 7, 10, 11], [0, 1, 8, 9])
    with pytest.raises(ConfigError, match="--fold must be in 0..4"):
        kfold_split(10, 5, 5, 0)


def two_eyed_cohort(n_patients=30, seed=0):
    """Two eyes per patient, one class per patient (60 % class 0)."""
    rng = np.random.default_rng(seed)
    y_patient = (rng.random(n_patients) < 0.4).astype(int)
    groups = [f"p{i // 2:02d}" for i in range(2 * n_patients)]
    y = [int(y_patient[i // 2]) for i in range(2 * n_patients)]
    return groups, y


@pytest.mark.parametrize("stratified", [False, True])
def test_grouped_kfold_keeps_both_eyes_together_and_covers_everyone(stratified):
    groups, y = two_eyed_cohort()
    seen = []
    for fold in range(5):
        tr, va = grouped_kfold(groups, 5, fold, seed=3, y=y if stratified else None)
        assert not {groups[i] for i in tr} & {groups[i] for i in va}
        assert sorted(tr + va) == list(range(len(groups)))
        seen += va
        if stratified:   # class balance of every fold close to the cohort's
            assert abs(np.mean([y[i] for i in va]) - np.mean(y)) < 0.2
    assert sorted(seen) == list(range(len(groups)))
    assert grouped_kfold(groups, 5, 2, seed=3, y=y) == grouped_kfold(groups, 5, 2, seed=3, y=y)
    assert grouped_kfold(groups, 5, 2, seed=3) != grouped_kfold(groups, 5, 2, seed=4)


@pytest.mark.parametrize("stratified", [False, True])
def test_grouped_holdout(stratified):
    groups, y = two_eyed_cohort(40)
    tr, te = grouped_holdout(groups, 0.25, seed=1, y=y if stratified else None)
    assert not {groups[i] for i in tr} & {groups[i] for i in te}
    assert sorted(tr + te) == list(range(len(groups)))
    assert 0.15 <= len({groups[i] for i in te}) / 40 <= 0.35
    if stratified:
        assert {y[i] for i in te} == {0, 1}


def test_grouped_split_errors_are_one_line():
    groups, y = two_eyed_cohort(3)
    with pytest.raises(ConfigError, match="5 folds need at least 5 patients"):
        grouped_kfold(groups, 5, 0, 0)
    y[0], y[1] = 0, 1
    with pytest.raises(ConfigError, match="one class per group"):
        grouped_kfold(groups, 2, 0, 0, y=y)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        grouped_holdout(groups, 1.5, 0)
    with pytest.raises(ConfigError, match="one label per sample"):
        grouped_kfold(groups, 2, 0, 0, y=[0])
