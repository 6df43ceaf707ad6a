"""Power and minimum detectable effect against statsmodels' NormalIndPower / TTestIndPower."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower

from moodboard.errors import ConfigError
from moodboard.experiment.power import mde, power_of, sample_size

ORACLE = {"z": NormalIndPower(), "t": TTestIndPower()}
DESIGNS = [
    (4.0, 1000, (0.5, 0.5), 0.05, 0.8),
    (2.5, 37, (0.3, 0.7), 0.1, 0.9),
    (1.0, 10, (0.5, 0.5), 0.05, 0.8),
]


@pytest.mark.parametrize("test", ["z", "t"])
@pytest.mark.parametrize("variance,n,weights,alpha,power", DESIGNS)
def test_mde_sample_size_and_power_equal_statsmodels(test, variance, n, weights, alpha, power):
    oracle, ratio, sd = ORACLE[test], weights[1] / weights[0], math.sqrt(variance)
    m = mde(variance, n, alpha=alpha, power=power, weights=weights, test=test)
    es = oracle.solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=ratio)
    assert m / sd == pytest.approx(es, rel=1e-5)  # statsmodels' root finder tolerance
    effect = 1.3 * m
    assert power_of(variance, effect, n, alpha, weights, test) == pytest.approx(
        oracle.power(effect_size=effect / sd, nobs1=n, alpha=alpha, ratio=ratio), rel=1e-9
    )
    n_needed = oracle.solve_power(
        effect_size=effect / sd, nobs1=None, alpha=alpha, power=power, ratio=ratio
    )
    assert sample_size(variance, effect, alpha, power, weights, test) == math.ceil(n_needed)


def test_sample_size_is_the_smallest_with_enough_power() -> None:
    n = sample_size(3.0, 0.1, test="t")
    assert power_of(3.0, 0.1, n, test="t") >= 0.8 > power_of(3.0, 0.1, n - 1, test="t")
    assert sample_size(3.0, -0.1) == sample_size(3.0, 0.1)


def test_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"'alpha' parameter of mde must be in \(0, 1\)"):
        mde(1.0, 100, alpha=2)
    with pytest.raises(ConfigError, match="'variance' parameter of mde"):
        mde(0.0, 100)
    with pytest.raises(ConfigError, match="'weights' parameter of sample_size"):
        sample_size(1.0, 0.1, weights=(0.0, 1.0))
    with pytest.raises(ConfigError, match="'power' parameter of mde must be > alpha"):
        mde(1.0, 100, alpha=0.2, power=0.1)
