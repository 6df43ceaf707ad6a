"""Return dynamics: satisfied shoppers come back more, repetition and boredom send them away."""

from __future__ import annotations

import numpy as np

from moodboard.config import ReturnSettings, SimulateSettings
from moodboard.simulate import World
from moodboard.simulate.clickmodel import Outcome
from moodboard.simulate.returns import ReturnState
from moodboard.simulate.run import Simulator
from moodboard.simulate.sessions import PageAsk, ShopperDays, ShownPage

ON = ReturnSettings(enabled=True)
N = 24


def _outcome(clicks: int = 0, purchases: int = 0, hides: int = 0) -> Outcome:
    def flags(k: int) -> np.ndarray:
        out = np.zeros(N, dtype=bool)
        out[:k] = True
        return out

    no = flags(0)
    return Outcome(flags(clicks), no, no, flags(purchases), flags(hides))


def _after(pages: list[tuple[np.ndarray, Outcome]], category: np.ndarray | None = None) -> float:
    state = ReturnState(ON, category)
    for items, out in pages:
        state.see(items, out)
    state.end_day(visited=True)
    return state.probability


def test_the_first_day_is_a_visit_and_satisfaction_raises_the_next_days_chance() -> None:
    assert ReturnState(ON).visits_today(0.999)
    items = [np.arange(N) + N * p for p in range(2)]
    bored = _after([(i, _outcome()) for i in items])
    pleased = _after([(i, _outcome(clicks=3, purchases=1)) for i in items])
    annoyed = _after([(i, _outcome(hides=2)) for i in items])
    assert annoyed < bored < pleased


def test_repetition_and_boredom_lower_the_chance() -> None:
    out = _outcome(clicks=1)
    fresh = _after([(np.arange(N) + N * p, out) for p in range(3)])
    repeated = _after([(np.arange(N), out) for _ in range(3)])
    assert repeated < fresh
    mixed = np.arange(10 * N) % 10  # ten categories, evenly shown
    one = np.zeros(10 * N, dtype=np.int64)  # every item of one category
    pages = [(np.arange(N) + N * p, out) for p in range(3)]
    assert _after(pages, one) < _after(pages, mixed)


def test_a_day_away_drifts_back_to_the_base_rate() -> None:
    state = ReturnState(ON)
    state.see(np.arange(N), _outcome(hides=5))
    state.end_day(visited=True)
    low = state.probability
    assert low < ON.base
    state.end_day(visited=False)
    assert low < state.probability < ON.base


class _ByTaste:
    """Each shopper's next page of the items they like most (or least), never one twice."""

    def __init__(self, world: World, best: bool) -> None:
        self.world, self.best = world, best
        self.shown: dict[str, int] = {}

    def __call__(self, ask: PageAsk) -> ShownPage:
        aff = self.world.affinity(ask.shopper)
        order = np.argsort(-aff if self.best else aff, kind="stable")
        start = self.shown.get(ask.shopper.user_id, 0)
        self.shown[ask.shopper.user_id] = start + ask.k
        items = order[start % len(order) :][: ask.k]
        return ShownPage(items, np.ones(len(items)))


def _visits(world: World, best: bool, users: int = 150) -> np.ndarray:
    s = SimulateSettings(users=users, days=14, returns=ON, surface_mix={"feed": 1.0})
    sim = Simulator(world, s)
    pages = _ByTaste(world, best)
    out = []
    for n in range(users):
        days = ShopperDays(sim, n, crn=True, prefix="t")
        days.run(range(14), pages)
        out.append(days.returns.visits)
    return np.array(out)


def test_shoppers_shown_what_they_like_come_back_on_more_days(world: World) -> None:
    liked, disliked = _visits(world, True), _visits(world, False)
    assert (liked >= 1).all() and (disliked >= 1).all()  # the first day is a visit
    print("visits in 14 days, liked vs disliked pages:", liked.mean(), disliked.mean())
    assert liked.mean() > disliked.mean() + 1.0, (liked.mean(), disliked.mean())
    assert (_visits(world, True) == liked).all()  # the same seed, the same visits


def test_returns_are_off_by_default_and_then_every_day_draws_sessions() -> None:
    assert not SimulateSettings().returns.enabled
