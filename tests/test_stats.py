"""Seed statistics: interquartile mean and percentile bootstrap intervals, checked on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qlearn.stats import bootstrap_ci, iqm, summarize


def test_iqm_hand_examples():
    # sorted: 1 2 3 4 5 6 7 100; the middle half (ranks 3..6) is 3 4 5 6 -> 4.5; the outlier is ignored
    assert iqm([1, 2, 3, 4, 100, 5, 6, 7]) == pytest.approx(4.5)
    # four values: the middle two
    assert iqm([10, 0, 4, 2]) == pytest.approx(3.0)
    # five values: drop floor(5/4) = 1 from each end -> 2 3 4
    assert iqm([5, 1, 4, 2, 3]) == pytest.approx(3.0)
    # six values: drop one from each end -> 2 3 4 5
    assert iqm([6, 1, 2, 3, 4, 5]) == pytest.approx(3.5)
    # three or fewer: nothing to trim
    assert iqm([1, 2, 9]) == pytest.approx(4.0)
    assert iqm([7.5]) == 7.5
    assert iqm(np.array([[1.0, 2.0], [3.0, 4.0]])) == pytest.approx(2.5)  # any shape, flattened
    assert math.isnan(iqm([]))


def test_iqm_is_the_25_percent_trimmed_mean():
    """Same as scipy.stats.trim_mean(x, 0.25) (what rliable uses), written out: cut floor(n/4) per end."""
    rng = np.random.default_rng(0)
    for n in range(1, 40):
        x = rng.standard_cauchy(n)
        cut = int(0.25 * n)
        assert iqm(x) == pytest.approx(np.sort(x)[cut:n - cut].mean()), n


def test_iqm_is_robust_to_outliers_and_equals_mean_for_symmetric_data():
    assert iqm([0.7, 0.7, 0.71, 0.69, -50, 80]) == pytest.approx(0.7)
    assert iqm(np.arange(8.0)) == pytest.approx(np.mean(np.arange(8.0)))


def test_bootstrap_ci_contains_the_mean_and_shrinks_with_data():
    rng = np.random.default_rng(1)
    small = rng.normal(0.5, 0.2, 10)
    large = rng.normal(0.5, 0.2, 1000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # ~sqrt(100) = 10 times narrower
    # about 1.96 standard errors either side for a large sample
    se = large.std(ddof=1) / math.sqrt(len(large))
    assert (hi_l - lo_l) == pytest.approx(2 * 1.96 * se, rel=0.1)
    # a wider level gives a wider interval
    lo99, hi99 = bootstrap_ci(small, level=0.99)
    assert lo99 <= lo_s and hi99 >= hi_s


def test_bootstrap_ci_is_reproducible_with_a_seed():
    x = np.random.default_rng(5).random(20)
    assert bootstrap_ci(x, seed=3) == bootstrap_ci(x, seed=3)
    assert bootstrap_ci(x, seed=3) != bootstrap_ci(x, seed=4)  # the seed picks the resamples
    assert bootstrap_ci(x, iqm, n_boot=500, seed=3) == bootstrap_ci(x, iqm, n_boot=500, seed=3)


def test_bootstrap_ci_with_another_statistic():
    x = [1, 2, 3, 4, 100, 5, 6, 7]
    lo, hi = bootstrap_ci(x, iqm, n_boot=1000)
    assert lo <= iqm(x) <= hi
    assert hi < 100  # the outlier cannot drag the IQM's interval up to it
    lo_m, hi_m = bootstrap_ci(x, np.median, n_boot=1000)
    assert lo_m <= np.median(x) <= hi_m


def test_bootstrap_ci_degenerate_cases():
    lo, hi = bootstrap_ci([0.7] * 7)
    assert lo == hi == pytest.approx(0.7)
    assert bootstrap_ci([0.25]) == (0.25, 0.25)
    lo, hi = bootstrap_ci([])
    assert math.isnan(lo) and math.isnan(hi)


def test_summarize_keys_and_values():
    x = [0.2, 0.4, 0.6, 0.8, 1.0]
    s = summarize(x)
    assert set(s) == {"mean", "ci95", "iqm", "iqm_ci95", "min", "max", "n"}
    assert s["mean"] == pytest.approx(0.6) and s["iqm"] == pytest.approx(0.6)
    assert s["min"] == 0.2 and s["max"] == 1.0 and s["n"] == 5
    assert len(s["ci95"]) == 2 and s["ci95"][0] <= s["mean"] <= s["ci95"][1]
    assert len(s["iqm_ci95"]) == 2 and s["iqm_ci95"][0] <= s["iqm"] <= s["iqm_ci95"][1]
    assert summarize(x) == s  # same seed, same numbers
    one = summarize([0.5])
    assert one["ci95"] == [0.5, 0.5] and one["iqm_ci95"] == [0.5, 0.5] and one["n"] == 1
    import json

    json.dumps(s)  # plain floats and lists: goes straight into aggregate.json
