"""Simulated shoppers: deterministic, position-biased as documented, faithful to their tastes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest

from moodboard.config import ClickModelSettings, SimulateSettings
from moodboard.datasets import ingest_dataset
from moodboard.errors import InputError
from moodboard.ingest import Workspace
from moodboard.simulate import (
    PositionBiasedClickModel,
    Simulator,
    World,
    load_tastes,
    run_simulation,
)
from moodboard.simulate.run import population_seed, setup_world

SETTINGS = SimulateSettings(users=600, days=7, seed=11)


@pytest.fixture(scope="module")
def fashion_ws(datasets_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("sim") / "ws")
    ingest_dataset(ws, "fashion")
    return ws


@pytest.fixture(scope="module")
def simulated(fashion_ws: Workspace) -> tuple[Workspace, object]:
    return fashion_ws, run_simulation(fashion_ws, SETTINGS)


def _events(ws: Workspace) -> list[dict]:
    with duckdb.connect() as con:
        return (
            con.execute(f"SELECT * FROM read_parquet('{ws.events.glob()}') ORDER BY event_id")
            .to_arrow_table()
            .to_pylist()
        )


def test_click_model_curve_is_the_documented_one() -> None:
    m = PositionBiasedClickModel(ClickModelSettings(position_bias_eta=0.8))
    pos = np.arange(1, 11)
    np.testing.assert_allclose(m.examination(pos), pos**-0.8)
    aff = np.linspace(-1, 3, 10)
    np.testing.assert_allclose(m.click_probability(pos, aff), pos**-0.8 * m.attraction(aff))
    assert np.all(np.diff(m.attraction(aff)) > 0)


def test_same_seed_same_logs_and_different_seed_different_logs(fashion_ws: Workspace) -> None:
    world = World.from_products(fashion_ws.products_table())
    small = SETTINGS.model_copy(update={"users": 40})
    a = list(Simulator(world, small).tables())
    b = list(Simulator(world, small).tables())
    c = list(Simulator(world, small.model_copy(update={"seed": 12})).tables())
    assert len(a) == len(b) and all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert not a[0].equals(c[0])


def test_simulated_events_pass_every_check_and_are_all_stored(simulated) -> None:
    ws, result = simulated
    assert result.report.quarantined == 0
    assert result.report.read == result.report.stored > 100_000
    status = ws.status()
    assert status["users"] == SETTINGS.users
    for typ in ("search", "impression", "click", "save", "add_to_cart", "purchase"):
        assert status["events"][typ] > 0
    assert status["boards"] >= SETTINGS.users
    saved = [b for b in ws.boards() if b.item_ids]
    assert len(saved) > SETTINGS.users / 3


def test_ctr_by_position_follows_the_bias_curve(simulated) -> None:
    ws, _ = simulated
    eta = SETTINGS.click_model.position_bias_eta
    with duckdb.connect() as con:
        rows = con.execute(f"""
            WITH e AS (SELECT * FROM read_parquet('{ws.events.glob()}')),
            imp AS (SELECT request_id, item_id, position FROM e
                    WHERE type = 'impression' AND propensity <= 1.0 / 48),
            clk AS (SELECT DISTINCT request_id, item_id FROM e WHERE type = 'click')
            SELECT imp.position, count(*), count(clk.item_id) FROM imp
            LEFT JOIN clk USING (request_id, item_id) GROUP BY 1 ORDER BY 1
        """).fetchall()
    pos = np.array([r[0] for r in rows], float)
    n = np.array([r[1] for r in rows], float)
    clicks = np.array([r[2] for r in rows], float)
    ctr = clicks / n
    # the fitted log-log slope is the bias exponent
    slope = np.polyfit(np.log(pos), np.log(ctr), 1, w=np.sqrt(clicks))[0]
    assert abs(slope + eta) < 0.12, slope
    # every position's CTR ratio to the top is within sampling error of k ** -eta
    expected = ctr[0] * pos**-eta
    se = np.sqrt(expected * (1 - expected) / n + ctr[0] * (1 - ctr[0]) / n[0] * pos ** (-2 * eta))
    assert np.mean(np.abs(ctr - expected) <= 3 * se) >= 0.95
    buckets = [
        ctr[(pos >= lo) & (pos <= hi)].mean() for lo, hi in ((1, 3), (4, 12), (13, 24), (25, 48))
    ]
    assert all(x > y for x, y in itertools.pairwise(buckets))


def test_users_click_their_preferred_attributes_more(simulated) -> None:
    ws, _ = simulated
    tastes = load_tastes(ws)
    types = {p.id: p.attributes.get("articleType") for p in ws.products()}
    shown = {True: 0, False: 0}
    clicked = {True: 0, False: 0}
    for e in _events(ws):
        if e["type"] not in ("impression", "click"):
            continue
        liked = types[e["item_id"]] in tastes[e["user_id"]]["articleType"]
        (shown if e["type"] == "impression" else clicked)[liked] += 1
    ctr_liked = clicked[True] / shown[True]
    ctr_other = clicked[False] / shown[False]
    assert ctr_liked > 2 * ctr_other, (ctr_liked, ctr_other)


def test_true_tastes_are_retrievable_and_match_the_simulator(simulated) -> None:
    ws, _ = simulated
    tastes = load_tastes(ws)
    assert len(tastes) == SETTINGS.users
    sim = Simulator(World.from_products(ws.products_table()), SETTINGS)
    for n in (0, 7, 599):
        sh = sim.shopper(n)
        assert tastes[sh.user_id] == sh.favourites
        assert 2 <= len(sh.favourites["articleType"]) <= 4
    assert json.dumps(tastes[sim.user_id(0)])  # plain strings, ready for reports


def test_a_run_with_another_seed_keeps_the_workspaces_shoppers(
    fashion_ws: Workspace, tmp_path: Path
) -> None:
    world = World.from_products(fashion_ws.products_table())
    ws = Workspace(tmp_path / "ws")
    first = SETTINGS.model_copy(update={"users": 30, "days": 1, "seed": 0})
    setup_world(ws, Simulator(world, first, population_seed=population_seed(ws, 0)))
    tastes = load_tastes(ws)
    later = first.model_copy(update={"seed": 7})
    sim = Simulator(world, later, population_seed=population_seed(ws, 7))
    setup_world(ws, sim)
    assert sim.population_seed == 0 and load_tastes(ws) == tastes  # the same shoppers
    again = Simulator(world, first)
    assert not next(sim.tables()).equals(next(again.tables()))  # who do other things
    with pytest.raises(InputError, match="drawn with seed 0, not 7"):
        setup_world(ws, Simulator(world, later))
    (ws.root / "simulation" / "population.json").write_text('{"seed": "zero"}')
    with pytest.raises(InputError, match=r'must be \{"seed": <int>\}'):
        population_seed(ws, 7)
