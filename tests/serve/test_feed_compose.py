"""``blend/compose`` on the served feed of the mini engine (``rank/multihead`` + ``blend/compose``
set through the environment): the utility order, diversity, slot rules, and explore slots
whose logged propensities are the policy's own, in the page JSON and in the impressions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving import api_client, serve_settings

from moodboard.blend import SlotRulesConfig, UtilityConfig
from moodboard.blend.compose import ComposeDiversity, FreshConfig
from moodboard.data import Request
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace, all_events
from moodboard.rank import MULTIHEAD
from moodboard.serve.registry import Engine
from moodboard.surfaces import Surface, build_surface
from moodboard.surfaces.compose import COMPOSE, explore_choice

K = 24
SLOTS = (4, 10, 16, 22)
ENV = {"MOODBOARD_SURFACES__FEED__RANKER": MULTIHEAD, "MOODBOARD_SURFACES__FEED__BLEND": COMPOSE}


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in ENV.items():
            mp.setenv(name, value)
        settings = serve_settings()
    with api_client(served_ws.root, settings) as c:
        yield c


@pytest.fixture(scope="module")
def engine(client: TestClient) -> Engine:
    return client.app.state.live.engine


@pytest.fixture(scope="module")
def users(engine: Engine) -> list[str]:
    return [u for u in engine.histories.users() if len(engine.history(u)) >= 3][:6]


def _chain(engine: Engine, **compose: object) -> Surface:
    """The served feed's chain with other ``compose`` settings."""
    cfg = engine.feed.config
    new = cfg.model_copy(update={"compose": cfg.compose.model_copy(update=compose)})
    env = engine.feed.env
    return build_surface("feed", new, engine.catalog, engine.sources, env.seed, env.resources)


def _unit(engine: Engine, items: np.ndarray) -> np.ndarray:
    v = engine.feed.env.item_vectors("dense/text")[items].astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def test_strength_zero_without_explore_is_the_utility_order(
    client: TestClient, engine: Engine, users: list[str]
) -> None:
    weights = {"p_click": 1.0, "p_purchase": 30.0, "p_hide": -10.0}
    chain = _chain(
        engine,
        utility=UtilityConfig(weights=weights),
        diversity=ComposeDiversity(strength=0.0),
        slot_rules=SlotRulesConfig(rules=()),
        fresh=FreshConfig(policy="none"),
    )
    for user in users[:3]:
        req = Request(surface="feed", user_id=user, k=K, session="u0")
        prepared, fused = chain.rank_input(req)
        ranked = chain.rank(fused, prepared.rank)
        u = sum(w * ranked.score(n).astype(np.float64) for n, w in weights.items())
        want = ranked.items[np.argsort(-u, kind="stable")][:K]
        got = chain.run(req).candidates.head(K)
        assert got.items.tolist() == want.tolist(), user
        assert (got.score("propensity") == 1).all() and (got.score("explored") == 0).all()
    page = client.get(f"/feed/{users[0]}", params={"k": K, "explain": 1}).json()
    blend = [st["component"] for st in page["explain"]["stages"] if st["name"] == "blend"]
    assert blend == [COMPOSE]
    assert all("p_click" in it["explain"]["scores"] for it in page["items"])


def test_diversity_lowers_the_intra_list_similarity(engine: Engine, users: list[str]) -> None:
    def ils(strength: float, method: str) -> float:
        div = ComposeDiversity(method=method, strength=strength)
        chain = _chain(engine, diversity=div, fresh=FreshConfig(policy="none"))
        sims = []
        for user in users:
            page = chain.run(Request(surface="feed", user_id=user, k=K, session="d"))
            v = _unit(engine, page.candidates.items[:K])
            s = v @ v.T
            sims.append((s.sum() - np.trace(s)) / (K * (K - 1)))
        return float(np.mean(sims))

    base = ils(0.0, "mmr")
    for method in ("mmr", "dpp"):
        diverse = ils(0.7, method)
        print(f"intra-list similarity {base:.3f} -> {method} {diverse:.3f}")
        assert diverse < base - 0.02, (method, base, diverse)


def _windows_hold(codes: list[object], max_items: int, window: int) -> bool:
    for start in range(max(1, len(codes) - window + 1)):
        counts = [c for c in codes[start : start + window] if c]
        if any(counts.count(c) > max_items for c in set(counts)):
            return False
    return True


def test_slot_rules_hold_on_served_pages(client: TestClient, users: list[str]) -> None:
    for user in [*users[:4], "compose-newcomer"]:
        page = client.get(f"/feed/{user}", params={"k": 40, "session": "rules"}).json()
        placed = [it for it in page["items"] if not it["explored"]]  # explore slots aside
        assert len(placed) == 40 - len(SLOTS)
        assert _windows_hold([it["category"] for it in placed], 3, 6), user
        assert _windows_hold([it["brand"] for it in placed], 2, 6), user


def test_explore_slots_log_the_policys_marginals(
    client: TestClient, engine: Engine, users: list[str]
) -> None:
    for user in (users[0], "compose-newcomer"):
        page = client.get(f"/feed/{user}", params={"k": K, "session": "mc"}).json()
        items = page["items"]
        explored = [it for it in items if it["explored"]]
        assert [it["position"] for it in explored] == list(SLOTS)
        assert all(it["propensity"] == 1.0 for it in items if not it["explored"])
        req = Request(surface="feed", user_id=user, k=K, session="mc")
        prepared, _ = engine.feed.rank_input(req)
        arms, choice = explore_choice(prepared, engine.feed.env, len(SLOTS))
        np.testing.assert_allclose(choice.marginals.sum(1), 1.0, atol=1e-6)  # per slot
        drawn = engine.catalog.ids.external(arms[choice.order].tolist())
        assert [it["id"] for it in explored] == drawn
        for s, it in enumerate(explored):
            assert it["propensity"] == pytest.approx(choice.marginals[s, choice.order[s]], 1e-6)
            assert it["propensity_cascade"] == pytest.approx(choice.cascade[s], 1e-6)
        assert 0 < explored[-1]["propensity_cascade"] < explored[0]["propensity_cascade"] <= 1
        engaged = set(engine.catalog.ids.external(engine.history(user)))
        assert not engaged & {it["id"] for it in items}


def test_a_replayed_request_gets_the_same_page(engine: Engine, users: list[str]) -> None:
    def page(rid: str) -> tuple:
        c = engine.feed.run(Request(surface="feed", user_id=users[1], k=K, request_id=rid))
        top = c.candidates.head(K)
        return tuple(top.items.tolist()), tuple(np.round(top.score("propensity"), 9).tolist())

    assert page("replay-1") == page("replay-1")
    assert len({page(f"replay-{i}") for i in range(8)}) > 1  # other ids draw other items


def test_impressions_carry_the_propensities(
    client: TestClient, served_ws: Workspace, users: list[str]
) -> None:
    plain = client.get(f"/feed/{users[2]}", params={"k": K, "session": "wal"}).json()
    rows = client.get(f"/feed/{users[2]}", params={"k": K, "session": "wal", "modules": 1})
    with_rows = rows.json()
    assert with_rows["modules"]  # the rows first, the composed page as the grid
    client.app.state.wal.flush()
    ev = all_events(served_ws).to_pandas()
    for page in (plain, with_rows):
        imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
        imp = imp.sort_values("position")
        assert list(imp["item_id"]) == [it["id"] for it in page["items"]]
        props = [p if isinstance(p, dict) else json.loads(p) for p in imp["props"]]
        for it, chance, p in zip(page["items"], imp["propensity"], props, strict=True):
            assert chance == pytest.approx(it["propensity"], 1e-9)
            assert p["explored"] is it["explored"] and "propensity" not in p["scores"]
            if "module" not in p:  # the grid: explore slots log their cascade too
                assert p["propensity_cascade"] == pytest.approx(it["propensity_cascade"], 1e-9)
        grid = [(it, p) for it, p in zip(page["items"], props, strict=True) if "module" not in p]
        # every slot on a plain page; under module rows, the grid's first ones (the rows'
        # items leave the grid, so its slots may move up)
        n_explored = sum(it["explored"] for it, _ in grid)
        assert n_explored == len(SLOTS) if page is plain else n_explored >= 1
        assert all(it["propensity"] < 1 for it, _ in grid if it["explored"])


def test_a_ranker_without_heads_is_refused_at_load(served_ws: Workspace, engine: Engine) -> None:
    s = serve_settings()
    feed = s.surfaces.feed.model_copy(update={"blend": COMPOSE})  # ranker: rank/noop
    s.surfaces = s.surfaces.model_copy(update={"feed": feed})
    with pytest.raises(ConfigError, match=re.escape('surfaces.feed.ranker = "rank/multihead"')):
        Engine.load(served_ws, settings=s)
    # no weights: the ranker's (here the fusion's) order, stated in the config
    cfg = engine.feed.config.model_copy(
        update={
            "ranker": "rank/noop",
            "compose": engine.feed.config.compose.model_copy(
                update={
                    "utility": UtilityConfig(weights={}),
                    "diversity": ComposeDiversity(strength=0.0),
                    "slot_rules": SlotRulesConfig(rules=()),
                    "fresh": FreshConfig(policy="none"),
                }
            ),
        }
    )
    env = engine.feed.env
    chain = build_surface("feed", cfg, engine.catalog, engine.sources, env.seed, env.resources)
    none = cfg.model_copy(update={"blend": "blend/none"})
    fused = build_surface("feed", none, engine.catalog, engine.sources, env.seed, env.resources)
    req = Request(surface="feed", user_id=engine.histories.users()[0], k=K)
    page = chain.run(req).candidates
    assert page.items.tolist() == fused.run(req).candidates.items.tolist()
    assert (page.score("propensity") == 1).all()
