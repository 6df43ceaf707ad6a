"""The mSPRT: its closed forms against numerical integration and inversion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize
from scipy import stats as sps

from moodboard.errors import ConfigError, InputError
from moodboard.experiment.sequential import (
    SequentialConfig,
    SequentialTest,
    always_valid_ci,
    msprt_log_lr,
    msprt_pvalue,
    tau2_for,
)

CASES = [(0.3, 0.1, 0.04), (-0.05, 0.02, 0.01), (1.0, 2.0, 0.5), (0.0, 0.3, 1.0)]


@pytest.mark.parametrize("est,se,tau2", CASES)
def test_mixture_ratio_equals_the_integral_over_the_normal_mixture(est, se, tau2) -> None:
    """Lambda = integral of N(est; theta, V) / N(est; 0, V) over theta ~ N(0, tau2)."""

    def integrand(theta: float) -> float:
        lr = sps.norm.pdf(est, theta, se) / sps.norm.pdf(est, 0, se)
        return lr * sps.norm.pdf(theta, 0, math.sqrt(tau2))

    s = math.sqrt(tau2)
    value, _ = integrate.quad(integrand, -12 * s + est, 12 * s + est, limit=200)
    assert math.exp(msprt_log_lr(est, se, tau2)) == pytest.approx(value, rel=1e-7)
    assert msprt_pvalue(est, se, tau2) == pytest.approx(min(1.0, 1 / value), rel=1e-7)


@pytest.mark.parametrize("est,se,tau2", CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_interval_is_where_the_ratio_stays_below_one_over_alpha(est, se, tau2, alpha) -> None:
    lo, hi = always_valid_ci(est, se, tau2, alpha)
    for end in (lo, hi):
        assert math.exp(msprt_log_lr(est, se, tau2, theta0=end)) == pytest.approx(1 / alpha)
    # numerical inversion of Lambda(theta0) = 1 / alpha above the estimate
    root = optimize.brentq(
        lambda t0: msprt_log_lr(est, se, tau2, theta0=t0) - math.log(1 / alpha), est, est + 100
    )
    assert hi == pytest.approx(root, rel=1e-9)
    # wider than the fixed-horizon interval: the price of peeking
    assert hi - est > sps.norm.ppf(1 - alpha / 2) * se
    # duality: 0 is outside the interval exactly when the p-value is below alpha
    assert (msprt_pvalue(est, se, tau2) < alpha) == (not lo <= 0 <= hi)


def test_sequential_test_keeps_the_running_minimum_and_intersection() -> None:
    test = SequentialTest(SequentialConfig(tau2=0.01, alpha=0.05))
    looks = [(0.30, 0.2), (0.25, 0.05), (0.02, 0.04)]
    ps, cis = [], []
    for est, se in looks:
        p, ci = test.update(est, se)
        ps.append(msprt_pvalue(est, se, 0.01))
        cis.append(always_valid_ci(est, se, 0.01, 0.05))
        assert p == min(ps)
        assert ci == (max(c[0] for c in cis), min(c[1] for c in cis))
    assert test.looks == 3
    assert test.rejected == (min(ps) <= 0.05)
    assert ps[1] < 0.05 < ps[2] and test.rejected  # rejected at look 2, stays rejected


def test_parameters_are_checked() -> None:
    assert tau2_for(0.2) == pytest.approx(0.04)
    with pytest.raises(ConfigError, match="'mde' parameter of tau2_for"):
        tau2_for(0)
    with pytest.raises(ValueError):
        SequentialConfig(tau2=-1.0)
    with pytest.raises(InputError, match="standard errors"):
        msprt_pvalue(np.array([0.1, 0.2]), np.array([0.1, 0.0]), 0.1)
    with pytest.raises(ConfigError, match=r"'alpha' parameter of always_valid_ci"):
        always_valid_ci(0.1, 0.1, 0.1, alpha=1.0)
