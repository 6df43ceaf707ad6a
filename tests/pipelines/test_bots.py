"""Bots: the simulator's bot accounts are caught by the named rules, no shopper is, and with the
filter on the build's popularity and the ranker's training labels do not lift the bots' items.

One seeded simulation over the mini catalog (300 accounts, 4 days, 4% bots: four of each
kind, every kind pushing its own 3 items). The build's own code paths are used: the
``popular/trending`` step with its build context, and the labels the search ranker step
trains on (``labels_table`` of ``BuildContext.events()``) and the complementary categories,
once with ``[bots]`` on and once off.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from mini import mini_products
from moodboard.build.complements import workspace_complements
from moodboard.build.context import BuildContext
from moodboard.build.layout import part
from moodboard.build.steps import PopularStep
from moodboard.config import BotsConfig, Settings, SimulateSettings
from moodboard.data import columns as C
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.pipelines import RULES, Bots, labels_table
from moodboard.retrieve.registry import load_source
from moodboard.simulate import Simulator, World, load_bots, load_tastes, run_simulation

SIM = SimulateSettings(users=300, days=4, seed=3, bot_share=0.04)


@pytest.fixture(scope="module")
def sim_ws(datasets_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("bots") / "ws")
    assert ingest_catalog(ws, [mini_products()], check_images=False).quarantined == 0
    run_simulation(ws, SIM)
    return ws


def _context(ws: Workspace, enabled: bool) -> BuildContext:
    settings = Settings(bots=BotsConfig(enabled=enabled))
    return BuildContext(ws, ws.products_table(), settings)


def test_every_bot_is_flagged_by_its_rule_and_no_shopper_is(sim_ws: Workspace) -> None:
    bots = load_bots(sim_ws)
    assert len(bots) == 12 and all(re.fullmatch(r"sim-u\d{6}", u) for u in bots)
    humans = set(load_tastes(sim_ws))
    assert len(humans) == SIM.users - len(bots) and not humans & set(bots)
    found = _context(sim_ws, True).bots
    assert set(found.user_ids) == set(bots)  # every bot, and nobody else
    rule = dict(zip(found.user_ids, found.flagged.column("rule").to_pylist(), strict=True))
    kind_rule = {"click_flood": "per_minute", "save_spam": "item_entropy"}
    kind_rule["query_burst"] = "regular_gaps"
    assert all(rule[u] == kind_rule[b.kind] for u, b in bots.items())
    assert found.counts() == dict.fromkeys(RULES, 0) | dict.fromkeys(kind_rule.values(), 4)
    assert found.as_dict() == {"enabled": True, "flagged": 12, "by_rule": found.counts()}
    assert _context(sim_ws, False).bots.as_dict()["flagged"] == 0


def _targets(ws: Workspace, kinds: tuple[str, ...]) -> set[str]:
    return {t for b in load_bots(ws).values() if b.kind in kinds for t in b.targets}


def _popularity_ranks(ws: Workspace, enabled: bool, out: Path) -> dict[str, int]:
    """Each item's rank (0 = most popular) in the ``popular/trending`` the build would save."""
    ctx = _context(ws, enabled)
    step = PopularStep(ctx.settings.retrieve.popular)
    step(ctx, out)
    scores = load_source(out / step.folder, ctx.catalog).scores  # type: ignore[attr-defined]
    order = np.argsort(-scores, kind="stable")
    return dict(zip(ctx.catalog.ids.external(order), range(len(order)), strict=True))


def test_bots_targets_top_popularity_only_without_the_filter(
    sim_ws: Workspace, datasets_root: Path, tmp_path: Path
) -> None:
    botfree = Workspace(tmp_path / "botfree")  # the same shoppers (but the 12), no bots
    ingest_catalog(botfree, [sim_ws.products_table()], check_images=False)
    run_simulation(botfree, SIM.model_copy(update={"bot_share": 0.0}))
    organic = _popularity_ranks(botfree, True, tmp_path / "a")
    filtered = _popularity_ranks(sim_ws, True, tmp_path / "b")
    unfiltered = _popularity_ranks(sim_ws, False, tmp_path / "c")
    pushed = _targets(sim_ws, ("click_flood", "save_spam", "query_burst"))
    assert len(pushed) == 9
    assert sorted(unfiltered[t] for t in pushed) == list(range(9))  # the bots' 9 items on top
    # filtered: where the shoppers alone put them (two are liked: ranks ~20), give or take the
    # engagement of the 12 shoppers the bots replaced
    assert all(abs(filtered[t] - organic[t]) <= 25 for t in pushed)
    assert min(filtered[t] for t in pushed) >= 9


def test_bots_targets_do_not_rise_in_the_rankers_labels_with_the_filter(sim_ws: Workspace) -> None:
    pushed = sorted(_targets(sim_ws, ("save_spam", "query_burst")))
    share = {}
    for enabled in (True, False):
        ctx = _context(sim_ws, enabled)
        labels = labels_table(ctx.events(), ctx.settings.rank.labels)
        positive = labels.filter(pc.greater_equal(labels["label"], 2))
        on_targets = pc.is_in(positive[C.ITEM_ID], value_set=pc.cast(pushed, "string"))
        share[enabled] = pc.mean(on_targets.cast("float64")).as_py()
        bots = set(load_bots(sim_ws))
        assert (not bots & set(labels[C.USER_ID].to_pylist())) is enabled
    chance = len(pushed) / len(_context(sim_ws, True).catalog)  # 6 items of ~1,550
    assert share[False] > 0.2  # the bots' clicks and saves: a fifth of the positives or more
    assert share[True] < 5 * chance  # with the filter: about the items' fair share


def test_bots_leave_the_shoppers_logs_unchanged(sim_ws: Workspace) -> None:
    world = World.from_products(sim_ws.products_table())
    with_bots, without = (
        Simulator(world, SIM),
        Simulator(world, SIM.model_copy(update={"bot_share": 0.0})),
    )
    assert not without.bots and len(with_bots.bots) == 12
    human = next(n for n in range(SIM.users) if n not in with_bots.bots)
    bot = next(iter(with_bots.bots))
    assert with_bots.user_events(human) == without.user_events(human)
    assert with_bots.user_events(bot) == Simulator(world, SIM).user_events(bot)  # same seed
    assert with_bots.user_events(bot)[C.USER_ID][0] == without.user_events(bot)[C.USER_ID][0]


def test_bots_campaigns_make_no_complementary_categories_with_the_filter(
    sim_ws: Workspace,
) -> None:
    ctx = _context(sim_ws, True)
    category = dict(zip(ctx.catalog.ids.external_ids, ctx.catalog.category, strict=True))
    campaign_pairs = {
        (category[a], category[b])
        for bot in load_bots(sim_ws).values()
        for a in bot.targets
        for b in bot.targets
        if category[a] != category[b]
    }
    cfg = part("related/complements").config(ctx.settings)  # type: ignore[misc]

    def learned(bots: Bots | None) -> set[tuple[str, str]]:
        comp = workspace_complements(sim_ws, ctx.catalog, cfg, "duckdb", bots)
        return {(a, c.category) for a, cs in comp.pairs.items() for c in cs}

    assert len(learned(None) & campaign_pairs) >= 4  # the bots' items, seen "together"
    assert not learned(ctx.bots) & campaign_pairs
