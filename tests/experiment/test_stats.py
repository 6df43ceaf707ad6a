"""The tests on sufficient statistics against scipy / statsmodels (oracle tests)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from statsmodels.stats.weightstats import ztest as sm_ztest

from moodboard.errors import ConfigError, InputError
from moodboard.experiment.stats import (
    Moments,
    benjamini_hochberg,
    cuped,
    holm,
    ratio,
    srm,
    welch,
    ztest,
)


@pytest.fixture(scope="module")
def arms() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.gamma(2.0, 3.0, 600), rng.gamma(2.0, 3.4, 900)


def test_moments_add_up_and_give_numpy_mean_and_variance(arms) -> None:
    a, _ = arms
    m = Moments.of(a[:250]) + Moments.of(a[250:])
    assert m.n == a.size
    np.testing.assert_allclose([m.mean, m.var], [a.mean(), a.var(ddof=1)], rtol=1e-12)
    x = a**0.5
    mx = Moments.of(a[:100], x[:100]) + Moments.of(a[100:], x[100:])
    np.testing.assert_allclose(
        [mx.mean_x, mx.var_x, mx.cov], [x.mean(), x.var(ddof=1), np.cov(a, x)[0, 1]], rtol=1e-10
    )
    with pytest.raises(InputError, match="without them"):
        m + mx
    with pytest.raises(InputError, match="1-d and finite"):
        Moments.of([1.0, np.nan])


def test_welch_equals_scipy_ttest_ind_unequal_var(arms) -> None:
    a, b = arms
    for alpha in (0.05, 0.1):
        e = welch(Moments.of(a), Moments.of(b), alpha=alpha)
        ref = sps.ttest_ind(b, a, equal_var=False)
        ci = ref.confidence_interval(confidence_level=1 - alpha)
        np.testing.assert_allclose(
            [e.statistic, e.df, e.p_value, *e.ci],
            [ref.statistic, ref.df, ref.pvalue, ci.low, ci.high],
            rtol=1e-10,
        )
    assert e.estimate == pytest.approx(b.mean() - a.mean())
    assert e.lift == pytest.approx(b.mean() / a.mean() - 1)
    assert e.lift_ci[0] < e.lift < e.lift_ci[1]


def test_ztest_equals_statsmodels(arms) -> None:
    a, b = arms
    e = ztest(Moments.of(a), Moments.of(b))
    cm = CompareMeans(DescrStatsW(b), DescrStatsW(a))
    z, p = cm.ztest_ind(usevar="unequal")
    lo, hi = cm.zconfint_diff(alpha=0.05, usevar="unequal")
    np.testing.assert_allclose([e.statistic, e.p_value, *e.ci], [z, p, lo, hi], rtol=1e-10)
    assert np.isinf(e.df)
    # statsmodels' ztest function, equal sizes: pooled and unequal variance agree
    z2, p2 = sm_ztest(b[:600], a, usevar="unequal")
    e2 = ztest(Moments.of(a), Moments.of(b[:600]))
    np.testing.assert_allclose([e2.statistic, e2.p_value], [z2, p2], rtol=1e-10)


def test_ratio_variance_is_the_linearised_variance_and_matches_a_bootstrap() -> None:
    rng = np.random.default_rng(11)
    imp_c, imp_t = rng.poisson(15, 2000) + 1.0, rng.poisson(15, 2500) + 1.0
    clk_c = rng.binomial(imp_c.astype(int), 0.08).astype(float)
    clk_t = rng.binomial(imp_t.astype(int), 0.09).astype(float)
    e = ratio(Moments.of(clk_c, imp_c), Moments.of(clk_t, imp_t))

    def linearised_var(y: np.ndarray, x: np.ndarray) -> float:
        r = y.sum() / x.sum()
        return float(((y - r * x) / x.mean()).var(ddof=1) / y.size)

    se = np.sqrt(linearised_var(clk_c, imp_c) + linearised_var(clk_t, imp_t))
    assert e.se == pytest.approx(se, rel=1e-10)
    assert e.estimate == pytest.approx(clk_t.sum() / imp_t.sum() - clk_c.sum() / imp_c.sum())
    boot = []
    for y, x in ((clk_c, imp_c), (clk_t, imp_t)):
        idx = rng.integers(0, y.size, (2000, y.size))
        boot.append(y[idx].sum(1) / x[idx].sum(1))
    assert e.se == pytest.approx(np.std(boot[1] - boot[0], ddof=1), rel=0.06)
    with pytest.raises(InputError, match="x sums"):
        ratio(Moments.of(clk_c), Moments.of(clk_t))


def test_cuped_is_the_ols_treatment_coefficient_with_its_robust_se() -> None:
    """Estimate = OLS y ~ 1 + T + (x - mean x) exactly; the SE equals the HC1-robust SE to
    0.5% (ours keeps each arm's residual variance; plain OLS pools them and differs)."""
    rng = np.random.default_rng(5)
    xc, xt = rng.normal(5, 2, 800), rng.normal(5, 2, 1100)
    yc = 1.5 * xc + rng.normal(0, 1.0, 800)
    yt = 1.5 * xt + 0.3 + rng.normal(0, 1.4, 1100)
    e = cuped(Moments.of(yc, xc), Moments.of(yt, xt))
    y, x = np.r_[yc, yt], np.r_[xc, xt]
    t = np.r_[np.zeros(800), np.ones(1100)]
    fit = sm.OLS(y, sm.add_constant(np.c_[t, x - x.mean()])).fit(cov_type="HC1")
    assert e.estimate == pytest.approx(fit.params[1], rel=1e-10)
    assert e.se == pytest.approx(fit.bse[1], rel=5e-3)
    plain = ztest(Moments.of(yc), Moments.of(yt))
    assert e.variance_reduction == pytest.approx(1 - e.se**2 / plain.se**2)
    assert e.variance_reduction > 0.7  # x explains most of y
    assert e.lift == pytest.approx(e.estimate / yc.mean())
    with pytest.raises(InputError, match="varies"):
        cuped(Moments.of(yc, np.ones(800)), Moments.of(yt, np.ones(1100)))


@pytest.mark.parametrize("method,ours", [("holm", holm), ("fdr_bh", benjamini_hochberg)])
def test_multiple_comparisons_equal_multipletests(method, ours) -> None:
    rng = np.random.default_rng(3)
    p = np.r_[rng.uniform(0, 0.05, 8), rng.uniform(0, 1, 12), [0.01, 0.01, 1.0, 0.0]]
    np.testing.assert_allclose(ours(p), multipletests(p, method=method)[1], rtol=1e-12)
    with pytest.raises(InputError):
        ours([0.5, 1.2])


def test_srm_equals_chisquare_and_flags_a_mismatch() -> None:
    obs = {"a": 5030, "b": 4970, "c": 10100}
    w = {"a": 0.25, "b": 0.25, "c": 0.5}
    r = srm(obs, w)
    total = sum(obs.values())
    ref = sps.chisquare([5030, 4970, 10100], [total / 4, total / 4, total / 2])
    assert (r.statistic, r.p_value) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
    assert r.passed and "OK" in r.message
    bad = srm({"control": 5200, "treatment": 4800}, {"control": 1, "treatment": 1})
    assert not bad.passed and bad.p_value < 1e-3 and "mismatch" in bad.message
    with pytest.raises(ConfigError, match="must be the same"):
        srm({"a": 1, "b": 2}, {"a": 1, "c": 1})
    with pytest.raises(ConfigError, match=r"'threshold' parameter of srm must be in \(0, 1\)"):
        srm(obs, w, threshold=2)


def test_checks_on_scalar_input() -> None:
    with pytest.raises(InputError, match="2 or more users"):
        welch(Moments.of([1.0]), Moments.of([1.0, 2.0]))
    with pytest.raises(InputError, match="zero variance"):
        ztest(Moments.of([1.0, 1.0]), Moments.of([2.0, 2.0]))
    with pytest.raises(ConfigError, match=r"'alpha' parameter of welch must be in \(0, 1\)"):
        welch(Moments.of([1.0, 2.0]), Moments.of([1.0, 3.0]), alpha=2)


def test_batched_moments_give_the_same_effects_as_one_by_one(arms) -> None:
    a, b = arms
    ms = [(Moments.of(a[i::3]), Moments.of(b[i::3])) for i in range(3)]
    batch = welch(
        Moments(*(np.array([getattr(c, f) for c, _ in ms]) for f in ("n", "sum_y", "sum_y2"))),
        Moments(*(np.array([getattr(t, f) for _, t in ms]) for f in ("n", "sum_y", "sum_y2"))),
    )
    single = [welch(c, t) for c, t in ms]
    np.testing.assert_allclose(batch.p_value, [s.p_value for s in single], rtol=1e-12)
    np.testing.assert_allclose(batch.ci[0], [s.ci[0] for s in single], rtol=1e-12)
