"""Explore/exploit policies: propensities sum to 1 per slot, match the policy's own Monte-Carlo
frequencies and an independent quadrature of exact Beta CDFs; replays give the same slate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from moodboard.blend import LinUCB, LinUCBConfig, ThompsonConfig, ThompsonSampling, request_rng
from moodboard.blend._slate_math import BetaQuadrature
from moodboard.errors import ConfigError, NotFittedError

REQ = {"seed": 7, "user": "u1"}


def _thompson(successes: list[float], failures: list[float], **cfg) -> ThompsonSampling:
    """A policy whose arm ``i`` has had ``successes[i]`` and ``failures[i]`` rewards."""
    arms = np.concatenate([np.arange(len(successes)), np.arange(len(failures))])
    rewards = np.concatenate([np.ones(len(successes)), np.zeros(len(failures))])
    weights = np.concatenate([successes, failures])
    reps = np.repeat(arms, np.asarray(weights, dtype=np.int64))
    r = np.repeat(rewards, np.asarray(weights, dtype=np.int64))
    return ThompsonSampling(ThompsonConfig(**cfg)).fit(reps, r)


def _frequencies(choose, n_arms: int, slots: int, runs: int) -> np.ndarray:
    """``(slots, n_arms)`` counts of each arm per slot over ``runs`` requests."""
    counts = np.zeros((slots, n_arms))
    for r in range(runs):
        order = choose(request_rng(1, "mc", r))
        counts[np.arange(len(order)), order] += 1
    return counts


def _chi_square_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """The chi-square goodness-of-fit p-value of one slot (cells expected >= 5 pooled)."""
    expected = probs * counts.sum()
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    return float(stats.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue)


def test_thompson_propensities_sum_to_one_and_match_monte_carlo() -> None:
    policy = _thompson([3, 1, 0, 8, 2, 0], [20, 5, 0, 60, 30, 2])
    arms = np.arange(6)
    choice = policy(arms, 3, request_id="r1", **REQ)
    np.testing.assert_allclose(choice.marginals.sum(1), 1.0, atol=1e-12)
    assert choice.error < 1e-4  # the raw quadrature already sums to 1 within 1e-4
    runs = 20_000
    counts = _frequencies(lambda rng: policy.choose(arms, 3, rng), 6, 3, runs)
    for s in range(3):
        assert _chi_square_p(counts[s], choice.marginals[s]) > 1e-3, s
    # the cascade of the most frequent ordered slate against its frequency (binomial, 4 sd)
    slates: dict[tuple[int, ...], int] = {}
    for r in range(runs):
        key = tuple(policy.choose(arms, 3, request_rng(1, "mc", r)).tolist())
        slates[key] = slates.get(key, 0) + 1
    top = max(slates, key=slates.__getitem__)
    p = policy.propensities(arms, np.asarray(top)).cascade[-1]
    assert abs(slates[top] / runs - p) < 4 * np.sqrt(p * (1 - p) / runs)


def _reference(a: np.ndarray, b: np.ndarray, slots: int, order: np.ndarray):
    """Per-slot marginals and cascade from exact ``betainc`` CDFs on a fine logit grid (the
    midpoint rule on 60,000 cells), an independent check of the quadrature."""
    mode, sd = np.log(a / b), np.sqrt(1 / a + 1 / b)
    lo, hi = mode - np.maximum(10 * sd, 40 / a), mode + np.maximum(10 * sd, 40 / b)
    u = np.linspace(lo.min(), hi.max(), 60_001)
    cdf_edges = special.betainc(a[:, None], b[:, None], special.expit(u)[None])
    ref = BetaQuadrature.__new__(BetaQuadrature)
    ref.h = np.diff(u)
    ref.weight = ref.h[:, None]
    ref.dens = (np.diff(cdf_edges, axis=1) / ref.h)[:, :, None]
    mid = special.expit((u[:-1] + u[1:]) / 2)
    ref.cdf = special.betainc(a[:, None], b[:, None], mid[None])[:, :, None]
    import moodboard.blend._slate_math as sm

    saved, sm._CUM = sm._CUM, np.array([[0.5]])  # midpoint: half the own cell lies below
    try:
        return ref.rank_marginals(slots), ref.cascade(order)
    finally:
        sm._CUM = saved


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1, 2, 1, 4, 3, 1, 2], [30, 40, 5, 90, 70, 1, 60]),  # fresh items: broad
        ([500, 480, 530, 20], [20000, 19000, 21000, 900]),  # modules: peaked
        ([1, 60, 2000, 3], [12, 900, 40000, 200]),  # mixed widths
        ([0.4, 0.7, 2.5, 1.3], [0.5, 2.0, 0.8, 1.1]),  # priors below 1
    ],
)
def test_thompson_quadrature_against_an_independent_reference(a, b) -> None:
    a, b = np.asarray(a, float), np.asarray(b, float)
    slots = min(3, len(a))
    quad = BetaQuadrature(a, b, slots)
    raw = quad.rank_marginals(slots)
    order = np.argsort(-a / (a + b))[:slots]
    ref, ref_cascade = _reference(a, b, slots, order)
    err = np.abs(raw / raw.sum(1, keepdims=True) - ref)
    assert err.max() < 2e-6, err.max()
    big = ref > 1e-4
    assert (err[big] / ref[big]).max() < 1e-4
    np.testing.assert_allclose(quad.cascade(order), ref_cascade, rtol=1e-4)
    # P(arm is max) against adaptive quadrature of pdf x prod CDF in x
    for i in range(len(a)):

        def integrand(x: float, i: int = i) -> float:
            others = [stats.beta.cdf(x, a[j], b[j]) for j in range(len(a)) if j != i]
            return stats.beta.pdf(x, a[i], b[i]) * float(np.prod(others))

        mode = (a[i] - 1) / (a[i] + b[i] - 2) if min(a[i], b[i]) > 1 else a[i] / (a[i] + b[i])
        exact = integrate.quad(integrand, 0, 1, points=[mode], limit=500, epsabs=1e-12)[0]
        assert abs(raw[0, i] / raw[0].sum() - exact) < 2e-6


def test_thompson_replays_a_request_and_varies_across_requests() -> None:
    policy = _thompson([1] * 10, [5] * 10)
    arms = np.arange(100, 110)
    first = policy(arms, 4, request_id="r1", **REQ)
    again = policy(arms, 4, request_id="r1", **REQ)
    assert first.order.tolist() == again.order.tolist()
    np.testing.assert_array_equal(first.propensity, again.propensity)
    others = {tuple(policy(arms, 4, request_id=f"r{i}", **REQ).order) for i in range(20)}
    assert len(others) > 10
    other_user = policy(arms, 4, seed=7, user="u2", request_id="r1")
    assert other_user.order.tolist() != first.order.tolist()


def test_thompson_keeps_the_quadrature_of_posteriors_it_saw_and_its_answers_are_unchanged() -> None:
    rng = np.random.default_rng(3)
    policy = _thompson(rng.integers(1, 30, 40).tolist(), rng.integers(1, 60, 40).tolist())
    arms = np.arange(40)
    slates = [policy(arms, 4, request_id=f"r{i}", **REQ) for i in range(6)]
    assert len(policy._kept) == 1  # one set of posteriors: one quadrature for every request
    for got in slates:  # each request's numbers equal a fresh computation's, bit for bit
        ref = ThompsonSampling(policy.config)
        ref.successes_, ref.failures_ = policy.successes_, policy.failures_
        want = ref.propensities(arms, np.searchsorted(arms, got.order))
        np.testing.assert_array_equal(got.marginals, want.marginals)
        np.testing.assert_array_equal(got.cascade, want.cascade)
    policy(arms[:30], 4, request_id="other", **REQ)  # another arm set: another quadrature
    policy.partial_fit(np.zeros(20, np.int64), np.ones(20))  # arm 0 gains: new posteriors
    after = policy(arms, 4, request_id="r0", **REQ)
    assert len(policy._kept) == 3
    assert after.marginals[:, 0].sum() > slates[0].marginals[:, 0].sum()


def test_thompson_learns_and_explores_the_fresh_arms() -> None:
    policy = ThompsonSampling().fit(np.array([0] * 50 + [1] * 50), np.array([1] * 40 + [0] * 60))
    arms = np.array([0, 1, 2])  # 2 never seen: the uniform prior
    assert policy.counts(arms).tolist() == [50, 50, 0]
    choice = policy(arms, 1, request_id="x", **REQ)
    p = choice.marginals[0]
    assert p[0] > 0.5 and p[1] < 1e-6 and 0.05 < p[2] < 0.5  # good, bad, unknown
    # partial_fit adds to what fit learned, as fitting everything at once does
    more = ThompsonSampling().fit(np.array([0] * 50), np.array([1] * 40 + [0] * 10))
    more.partial_fit(np.array([1] * 50), np.zeros(50))
    np.testing.assert_array_equal(more.posterior(arms)[0], policy.posterior(arms)[0])
    np.testing.assert_array_equal(more.posterior(arms)[1], policy.posterior(arms)[1])


def test_thompson_trials_count_as_that_many_rewards() -> None:
    """An item's impressions and click-through rate fit as one row each (``trials``)."""
    rows = ThompsonSampling().fit(np.array([0] * 10 + [1] * 4), np.array([1] * 3 + [0] * 11))
    shares = ThompsonSampling().fit(np.array([0, 1]), np.array([0.3, 0.0]), np.array([10, 4]))
    arms = np.array([0, 1, 2])
    for got, want in zip(shares.posterior(arms), rows.posterior(arms), strict=True):
        np.testing.assert_allclose(got, want)
    nothing = ThompsonSampling().fit(np.zeros(0, dtype=np.int64), np.zeros(0))
    assert nothing.posterior(arms)[0].tolist() == [1.0, 1.0, 1.0]  # the prior everywhere
    with pytest.raises(ConfigError, match="trials"):
        ThompsonSampling().fit(np.array([0]), np.array([0.5]), np.array([-1.0]))


def test_thompson_draws_among_at_most_max_arms() -> None:
    policy = _thompson([0, 0, 0, 0, 9], [90, 90, 90, 90, 1], max_arms=2)
    choice = policy(np.arange(5), 2, request_id="r", **REQ)
    assert set(np.flatnonzero(choice.marginals.sum(0) > 0)) <= {4, choice.order[1]}
    assert 4 in choice.order.tolist()
    np.testing.assert_allclose(choice.marginals.sum(1), 1.0)


def test_thompson_small_pools_and_bad_input() -> None:
    policy = ThompsonSampling().fit(np.array([0]), np.array([1.0]))
    one = policy(np.array([3]), 4, request_id="r", **REQ)
    assert one.order.tolist() == [0] and one.propensity.tolist() == [1.0]
    none = policy(np.array([], dtype=np.int64), 4, request_id="r", **REQ)
    assert len(none.order) == 0
    two = policy(np.array([0, 5]), 4, request_id="r", **REQ)  # both placed, in random order
    np.testing.assert_allclose(two.marginals.sum(0), 1.0, atol=1e-9)
    with pytest.raises(NotFittedError, match="call fit first"):
        ThompsonSampling()(np.array([0]), 1, request_id="r", **REQ)
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        ThompsonSampling().fit(np.array([0, 1]), np.array([1.0, 2.0]))
    with pytest.raises(ConfigError, match=">= 0"):
        ThompsonSampling().fit(np.array([-1]), np.array([1.0]))
    with pytest.raises(ConfigError, match="max_arm_id"):
        ThompsonSampling(ThompsonConfig(max_arm_id=10)).fit(np.array([11]), np.array([1.0]))


def _linucb(epsilon: float) -> tuple[LinUCB, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = np.array([0.3, -0.2, 0.1, 0.05])
    x = rng.normal(size=(400, 4))
    rewards = (rng.random(400) < 1 / (1 + np.exp(-(x @ truth)))).astype(float)
    policy = LinUCB(LinUCBConfig(epsilon=epsilon, alpha=0.5)).fit(x, rewards)
    return policy, rng.normal(size=(8, 4))


def test_linucb_propensities_sum_to_one_and_match_monte_carlo() -> None:
    policy, arms = _linucb(epsilon=0.3)
    choice = policy(arms, 3, request_id="r1", **REQ)
    np.testing.assert_allclose(choice.marginals.sum(1), 1.0)
    counts = _frequencies(lambda rng: policy.choose(arms, 3, rng), 8, 3, 8_000)
    for s in range(3):
        assert _chi_square_p(counts[s], choice.marginals[s]) > 1e-3, s
    greedy = np.argsort(-policy.upper_bounds(arms), kind="stable")[:3]
    p = policy.propensities(arms, greedy)
    assert p.cascade[-1] == pytest.approx(0.7 + 0.3 / (8 * 7 * 6))
    assert p.propensity[0] == pytest.approx(0.7 + 0.3 / 8)


def test_linucb_without_epsilon_is_deterministic_with_propensity_one() -> None:
    policy, arms = _linucb(epsilon=0.0)
    pages = {tuple(policy(arms, 3, request_id=f"r{i}", **REQ).order) for i in range(10)}
    assert len(pages) == 1
    choice = policy(arms, 3, request_id="r", **REQ)
    assert choice.propensity.tolist() == [1.0, 1.0, 1.0]
    assert choice.cascade.tolist() == [1.0, 1.0, 1.0]


def test_linucb_bound_rewards_uncertainty_and_ties_go_to_the_earlier_arm() -> None:
    policy = LinUCB(LinUCBConfig(alpha=1.0, epsilon=0.0)).fit(
        np.tile(np.eye(2)[[0]], (100, 1)), np.full(100, 0.5)
    )
    ucb = policy.upper_bounds(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert ucb[1] > ucb[0]  # the unexplored direction has the wider bound
    tie = policy(np.array([[0.0, 1.0], [0.0, 1.0]]), 1, request_id="r", **REQ)
    assert tie.order.tolist() == [0]
    with pytest.raises(ConfigError, match=r"\(n, 2\)"):
        policy.upper_bounds(np.ones((3, 3)))
    with pytest.raises(NotFittedError):
        LinUCB().upper_bounds(np.ones((1, 2)))
