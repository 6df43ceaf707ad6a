"""Broad-query sessions: how simulated shoppers use chips and module rows, and, on a small run
through the mini engine, that the rows help them buy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from moodboard.config import Settings
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.simulate.broad import (
    BroadSessionConfig,
    BroadSessions,
    broad_query,
    engine_chips,
)
from moodboard.simulate.run import Simulator
from moodboard.simulate.world import Shopper, World


@pytest.fixture(scope="module")
def engine(mini_engine: Workspace) -> Engine:
    return Engine.load(mini_engine, settings=Settings())


@pytest.fixture(scope="module")
def sim(mini_engine: Workspace) -> Simulator:
    return Simulator(World.from_products(mini_engine.products_table()), Settings().simulate)


def _shopper(**favourites: tuple[str, ...]) -> Shopper:
    return Shopper("u", {}, dict(favourites))


def test_a_broad_query_is_the_shoppers_season_or_usage_with_their_gender() -> None:
    s = _shopper(gender=("Women",), season=("Summer",), usage=("Casual",))
    assert broad_query(s) == "summer outfit for women"
    assert broad_query(_shopper(usage=("Casual",), gender=("Men",))) == "casual wear for men"
    assert broad_query(_shopper(articleType=("Shirts",))) is None


class _Recorder:
    """Chips that record the queries they were asked for."""

    def __init__(self, chips: Sequence[tuple[str, str]]) -> None:
        self.chips = chips
        self.asked: list[str] = []

    def __call__(self, query: str, user: str | None) -> Sequence[tuple[str, str]]:
        self.asked.append(query)
        return self.chips


def test_a_shopper_without_a_purchase_follows_the_first_chip_they_like(
    engine: Engine, sim: Simulator
) -> None:
    n = 0
    shopper = sim.shopper(n)
    liked = shopper.favourites["articleType"][0]
    chips = _Recorder([("winter coats", "Coats"), (f"refined {liked.lower()}", liked)])
    cfg = BroadSessionConfig(shoppers=2, max_queries=2, page_size=1, self_refine=0.0)
    runs = BroadSessions(engine, sim, cfg, chips=chips)
    purchases, asked, _, _ = runs.session(n, assisted=True)
    # a page of one item rarely sells: the shopper goes on with the chip of their taste
    if purchases == 0:
        assert asked == 2
    assert chips.asked == [broad_query(shopper)]
    # without chips and without refining themselves, they leave after the first query
    alone = BroadSessions(engine, sim, cfg, chips=None)
    p, asked_alone, first, _ = alone.session(n, assisted=False)
    assert asked_alone == 1 and (p > 0) == np.isfinite(first)


def test_both_arms_draw_the_same_numbers_so_identical_arms_do_not_differ(
    engine: Engine, sim: Simulator
) -> None:
    cfg = BroadSessionConfig(shoppers=12, max_queries=2)
    runs = BroadSessions(engine, sim, cfg, chips=None)
    a = [runs.session(n, assisted=False) for n in range(12)]
    b = [runs.session(n, assisted=False) for n in range(12)]
    assert a == b or np.allclose(np.array(a, float), np.array(b, float), equal_nan=True)


def test_chips_and_rows_help_broad_query_shoppers_buy_on_a_small_run(
    engine: Engine, sim: Simulator
) -> None:
    # 80 shoppers buy too rarely (about 10 purchases an arm) for a purchase interval away from
    # 0 (the README's run on the demo has one): their clicks show the direction, and their
    # purchases are not significantly lower
    cfg = BroadSessionConfig(shoppers=80, max_queries=2, seed=0)
    out = BroadSessions(engine, sim, cfg, chips=engine_chips(engine)).run().as_dict()
    diff = out["diffs"]["assisted-grid"]
    assert diff["clicks"]["ci"][0] > 0, out
    assert diff["purchases"]["ci"][1] > 0, out
