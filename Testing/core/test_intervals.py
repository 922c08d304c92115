"""orbitai.metrics.intervals: the 95 % intervals quoted with every phantom figure cover the truth about 95 %
of the time, narrow as the cohort grows, and are reproducible."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from orbitai.errors import InputError
from orbitai.metrics.classification import delong_auc_ci
from orbitai.metrics.intervals import (Interval, auc_ci, auc_difference_ci, bootstrap_ci, paired_bootstrap_ci,
                                       rate_cis, wilson_ci)


def test_wilson_matches_its_formula_and_covers_a_known_binomial():
    k, n, z = 47, 60, norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    ci = wilson_ci(k, n)
    assert ci.estimate == pytest.approx(p) and ci.n == n
    assert (ci.low, ci.high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    draws = np.random.default_rng(3).binomial(n, 0.8, size=4000)
    cis = {d: wilson_ci(d, n) for d in set(draws.tolist())}
    covered = np.mean([cis[d].low <= 0.8 <= cis[d].high for d in draws.tolist()])
    assert 0.93 <= covered <= 0.97
    assert np.isnan(wilson_ci(0, 0).estimate)


def test_bootstrap_of_a_mean_covers_the_truth_and_widens_with_fewer_cases():
    rng = np.random.default_rng(5)
    covered = [(ci := bootstrap_ci(rng.binomial(1, 0.7, 60), n_resamples=1000, seed=i)).low <= 0.7 <= ci.high
               for i in range(300)]
    assert 0.88 <= np.mean(covered) <= 0.99      # percentile bootstrap: close to 95 %, a little under
    width = {n: np.mean([(c := bootstrap_ci(rng.normal(0.8, 0.05, n))).high - c.low for _ in range(20)])
             for n in (8, 30, 120)}
    assert width[8] > width[30] > width[120]
    assert width[8] / width[120] == pytest.approx(np.sqrt(120 / 8), rel=0.35)


def test_bootstrap_is_reproducible_and_degenerate_cohorts_are_handled():
    v = np.random.default_rng(0).random(8)
    assert bootstrap_ci(v) == bootstrap_ci(v)
    assert bootstrap_ci(v, seed=1) != bootstrap_ci(v)
    lo, hi = bootstrap_ci(v, np.median)[1:3]
    assert v.min() <= lo <= np.median(v) <= hi <= v.max()
    assert bootstrap_ci([0.9, 0.9, 0.9]) == Interval(0.9, 0.9, 0.9, 3)
    with pytest.raises(InputError):
        bootstrap_ci([0.5])


def test_stratified_auc_interval_covers_a_binormal_auc_and_agrees_with_delong():
    d = 1.2
    truth = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(11)
    y = np.r_[np.ones(30), np.zeros(30)]
    hits, widths = [], []
    for i in range(150):
        p = np.r_[rng.normal(d, 1, 30), rng.normal(0, 1, 30)]
        ci = auc_ci(y, p, n_resamples=1000, seed=i)
        hits.append(ci.low <= truth <= ci.high)
        _, dlo, dhi = delong_auc_ci(y, p)
        widths.append((ci.high - ci.low) / (dhi - dlo))
        assert ci.low <= ci.estimate <= ci.high and ci.n == 60
    assert 0.88 <= np.mean(hits) <= 0.99
    assert 0.8 <= np.median(widths) <= 1.1
    p = np.r_[rng.normal(d, 1, 30), rng.normal(0, 1, 30)]
    every, third = auc_ci(y, p), auc_ci(y[::3], p[::3])
    assert third.n == 20 and third.high - third.low > every.high - every.low
    with pytest.raises(InputError, match="two cases of each class"):
        auc_ci([1, 0, 0], [0.9, 0.1, 0.2])


def test_paired_auc_difference():
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(40), np.zeros(40)]
    good = np.r_[rng.normal(2, 1, 40), rng.normal(0, 1, 40)]
    noisy = good + rng.normal(0, 2, 80)
    same = auc_difference_ci(y, good, good)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    diff = auc_difference_ci(y, good, noisy)
    assert diff.estimate == pytest.approx(auc_ci(y, good).estimate - auc_ci(y, noisy).estimate)
    assert 0 < diff.low < diff.estimate < diff.high


def test_rate_intervals_use_their_own_denominators():
    y = np.array([1] * 10 + [0] * 10)
    p = np.array([0.9] * 8 + [0.1] * 2 + [0.2] * 9 + [0.7])     # TP 8, FN 2, TN 9, FP 1
    r = rate_cis(y, p)
    assert (r["accuracy"].estimate, r["accuracy"].n) == (0.85, 20)
    assert (r["sensitivity"].estimate, r["sensitivity"].n) == (0.8, 10)
    assert (r["specificity"].estimate, r["specificity"].n) == (0.9, 10)
    assert (r["ppv"].n, r["npv"].n) == (9, 11) and r["ppv"] == r["precision"]
    assert r["accuracy"].bounds() == [round(r["accuracy"].low, 4), round(r["accuracy"].high, 4)]
    assert r["accuracy"].text() == f"0.850 ({r['accuracy'].low:.3f}-{r['accuracy'].high:.3f})"


def _f1(y, call):
    tp = np.sum((y == 1) & (call == 1))
    return 2 * tp / (np.sum(y == 1) + np.sum(call == 1)) if tp else 0.0


def test_paired_bootstrap_of_f1_resamples_cases_together():
    from sklearn.metrics import f1_score

    y = np.array([1] * 10 + [0] * 10)
    call = np.array([1] * 8 + [0] * 2 + [0] * 9 + [1])
    ci = paired_bootstrap_ci(_f1, y, call)
    assert ci.estimate == pytest.approx(f1_score(y, call)) and ci.n == 20
    assert 0.5 < ci.low < ci.estimate < ci.high <= 1.0
    wide = paired_bootstrap_ci(_f1, y[::2], call[::2])
    assert wide.high - wide.low > ci.high - ci.low
    with pytest.raises(InputError):
        paired_bootstrap_ci(np.mean, [1, 2, 3], [1, 2])
