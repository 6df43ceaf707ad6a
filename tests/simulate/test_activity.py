"""Shoppers who differ in how often they come (``simulate.activity_shape``)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import optimize, stats

from moodboard.config import ReturnSettings, SimulateSettings
from moodboard.errors import InputError
from moodboard.simulate import World
from moodboard.simulate.run import Simulator
from moodboard.simulate.sessions import PageAsk, ShopperDays, ShownPage
from moodboard.simulate.world import fit_activity_shape


def _page(ask: PageAsk) -> ShownPage:
    return ShownPage(np.arange(ask.k), np.ones(ask.k))


def _sessions(world: World, shape: float, users: int = 400, days: int = 20) -> np.ndarray:
    s = SimulateSettings(
        users=users, days=days, sessions_per_day=0.6, activity_shape=shape,
        pages_per_session=1, surface_mix={"feed": 1.0},
    )  # fmt: skip
    sim = Simulator(world, s)
    out = []
    for n in range(users):
        shopper = ShopperDays(sim, n, crn=True, prefix="t")
        shopper.run(range(days), _page)
        out.append(shopper.sessions)
    return np.array(out)


def test_a_shape_makes_a_few_shoppers_come_often_at_the_same_mean(world: World) -> None:
    alike, differ = _sessions(world, 0.0), _sessions(world, 0.5)
    print("sessions per shopper, mean/var:", alike.mean(), alike.var(), differ.mean(), differ.var())
    assert alike.var() / alike.mean() < 1.3  # Poisson: variance = mean
    assert abs(differ.mean() - 12) < 1.5 and abs(alike.mean() - 12) < 1.0
    assert differ.var() / differ.mean() > 8  # 1 + mean / k = 25 in expectation
    assert 0.35 < fit_activity_shape(differ) < 0.7  # the shape is read back


def test_a_shopper_keeps_their_rate_in_every_arm_and_shoppers_differ(world: World) -> None:
    sim = Simulator(world, SimulateSettings(activity_shape=0.8))
    rates = [ShopperDays(sim, n, crn=True, prefix="a").rate for n in range(50)]
    again = [ShopperDays(sim, n, crn=True, prefix="b").rate for n in range(50)]
    assert rates == again
    assert len(set(rates)) == 50
    flat = Simulator(world, SimulateSettings())
    assert {ShopperDays(flat, n, crn=True, prefix="a").rate for n in range(5)} == {0.6}


def test_activity_and_returns_cannot_both_decide_how_often_shoppers_come() -> None:
    with pytest.raises(ValidationError, match=r"activity_shape = 0 or returns\.enabled = false"):
        SimulateSettings(activity_shape=0.8, returns=ReturnSettings(enabled=True))


def test_the_fitted_shape_is_the_negative_binomial_maximum_likelihood() -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(5.0 * rng.gamma(0.8, 1 / 0.8, size=3_000))

    def nll(p: np.ndarray) -> float:
        k, mu = np.exp(p)
        return -stats.nbinom.logpmf(counts, k, k / (k + mu)).sum()

    ref = optimize.minimize(nll, [0.0, np.log(counts.mean())], method="Nelder-Mead", tol=1e-10)
    k = fit_activity_shape(counts)
    assert k == pytest.approx(float(np.exp(ref.x[0])), rel=1e-3)
    assert k == pytest.approx(0.8, rel=0.1)
    with pytest.raises(InputError, match="variance > mean"):
        fit_activity_shape(rng.binomial(10, 0.5, size=3_000))  # less spread than a Poisson
