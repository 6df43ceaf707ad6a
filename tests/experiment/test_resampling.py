"""The resampling checks of moodboard.experiment.validate on synthetic per-user logs."""

from __future__ import annotations

import time

import numpy as np
import pytest

from moodboard.errors import ConfigError, InputError
from moodboard.experiment.validate import UserValues, aa_runs, ab_coverage, planted_srm

ALPHA = 0.05


@pytest.fixture(scope="module")
def users() -> UserValues:
    """3000 users: impressions, clicks (y, a skewed count), pre-period clicks (the covariate)."""
    rng = np.random.default_rng(2026)
    n = 3000
    activity = rng.gamma(1.2, 1.0, n)  # heavy and light users
    impressions = rng.poisson(12 * activity) + 1.0
    ctr = rng.beta(2, 20, n)
    clicks = rng.binomial(impressions.astype(int), ctr).astype(float)
    pre_clicks = rng.poisson(clicks * 0.8 + 0.5).astype(float)
    return UserValues(y=clicks, x=impressions, pre=pre_clicks)


def test_aa_false_positive_rates_are_alpha_and_peeking_stays_below_it(users) -> None:
    start = time.perf_counter()
    rates = aa_runs(users, runs=2000, seed=1, alpha=ALPHA, days=7)
    elapsed = time.perf_counter() - start
    assert set(rates) == {"mean", "ratio", "cuped", "sequential"}
    for metric in ("mean", "ratio", "cuped"):  # 2000 runs: sd 0.49%, the bound is ~3 sd
        assert abs(rates[metric] - ALPHA) <= 0.014, (metric, rates)
    # seven looks, rejecting whenever any look does: always-valid, so at most alpha
    assert 0.001 < rates["sequential"] <= ALPHA, rates
    assert elapsed < 5, elapsed
    assert aa_runs(users, runs=50, seed=1) == aa_runs(users, runs=50, seed=1)


def test_a_planted_srm_is_flagged_and_a_fair_split_is_not() -> None:
    assert all(planted_srm(n=10_000, logged=(0.52, 0.48), seed=s) for s in range(5))
    assert not any(planted_srm(n=10_000, logged=(0.5, 0.5), seed=s) for s in range(5))
    assert not planted_srm(n=1000, logged=(0.52, 0.48))  # too few users to tell
    with pytest.raises(ConfigError, match="sum to 1"):
        planted_srm(logged=(0.6, 0.6))


def test_intervals_cover_a_planted_effect_and_cuped_narrows_them(users) -> None:
    out = ab_coverage(users, runs=1000, effect=0.3, seed=4, alpha=ALPHA)
    for metric in ("mean", "ratio", "cuped"):  # 1000 runs: sd 0.69%, the bound is ~3 sd
        assert abs(out[metric] - (1 - ALPHA)) <= 0.02, (metric, out)
    assert out["variance_reduction"] > 0.3
    # the interval width scales as the standard error: sqrt(1 - reduction)
    assert out["width_ratio"] == pytest.approx(np.sqrt(1 - out["variance_reduction"]), rel=0.05)


def test_inputs_are_checked() -> None:
    with pytest.raises(InputError, match="4 or more users"):
        UserValues(y=np.ones(3))
    with pytest.raises(InputError, match="one value per user"):
        UserValues(y=np.ones(10), x=np.ones(9))
    with pytest.raises(ConfigError, match="'runs' parameter of aa_runs must be an int >= 1"):
        aa_runs(UserValues(y=np.arange(10.0)), runs=0)
    only_y = aa_runs(UserValues(y=np.random.default_rng(0).normal(size=400)), runs=200, days=2)
    assert set(only_y) == {"mean", "sequential"}
