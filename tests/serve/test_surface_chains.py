"""Every surface is one declared chain: ``?explain=1`` lists its stages in order with their
component names, rankers plug into the rank stage, and a surface declared in config alone
(a prepare step plus a config entry) is served over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from serving import api_client, serve_settings

from moodboard.build import build
from moodboard.config import SimulateSettings
from moodboard.data import Candidates, Request
from moodboard.datasets import load_fashion
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.rank import RANKERS, LambdaMARTStage, NoopRanker, RankQuery, make_ranker
from moodboard.retrieve import SourceQuery
from moodboard.simulate import load_tastes, run_simulation
from moodboard.surfaces import Prepared, Probe, SurfaceEnv, build_surface, register_prepare
from moodboard.understand.threads import model_thread

TAIL = [("fuse", "fuse/rrf"), ("rank", "rank/noop")]


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root, serve_settings(max_k=50)) as c:
        yield c


def _stages(page: dict) -> list[tuple[str, str]]:
    stages = page["explain"]["stages"]
    assert all(s["ms"] >= 0 for s in stages) and set(stages[0]) == {"name", "component", "ms"}
    return [(s["name"], s["component"]) for s in stages]


def _retrieved(stages: list[tuple[str, str]]) -> list[str]:
    return [c for n, c in stages if n == "retrieve"]


def test_explain_lists_the_stages_of_every_surface_in_order(
    client: TestClient, served_ws: Workspace
) -> None:
    engine = client.app.state.live.engine
    search = client.get("/search", params={"q": "blue jeans", "k": 5, "explain": 1}).json()
    assert _stages(search) == [
        ("prepare", "prepare/search"),
        ("retrieve", "lexical/bm25"),
        ("retrieve", "dense/text"),
        ("retrieve", "dense/text_image"),  # the query's words by the products' looks
        ("fuse", "fuse/rrf"),
        ("rank", "rank/lambdamart"),  # trained by the build from the workspace's search logs
        ("blend", "blend/boost"),
        ("fallback", "fallback/popular"),
    ]
    ranker = engine.manifest["components"]["rank/lambdamart"]
    assert ranker["trained"] and ranker["path"] == "rank_lambdamart"
    assert "explain" not in client.get("/search", params={"q": "blue jeans", "k": 5}).json()
    item = search["items"][0]["id"]
    related = _stages(client.get(f"/related/{item}", params={"k": 8, "explain": 1}).json())
    assert related[0] == ("prepare", "prepare/related")
    assert related[-4:] == [*TAIL, ("blend", "blend/complements"), ("fallback", "fallback/popular")]
    assert {"dense/text", "graph/walks"} <= set(_retrieved(related))
    assert set(_retrieved(related)) <= set(engine.related.config.sources)
    user = next(u for u in sorted(load_tastes(served_ws)) if len(engine.history(u)))
    feed = _stages(client.get(f"/feed/{user}", params={"k": 8, "explain": 1}).json())
    assert feed[0] == ("prepare", "prepare/feed")
    assert feed[-4:] == [*TAIL, ("blend", "blend/explore"), ("fallback", "fallback/popular")]
    assert "two_tower" in _retrieved(feed)
    cold = _stages(client.get("/feed/nobody-new", params={"k": 8, "explain": 1}).json())
    assert _retrieved(cold) == ["popular/trending"]  # a user without history: the cold sources
    board = client.post("/boards", json={"user_id": "ann", "title": "jeans"}).json()
    for it in search["items"][:2]:
        r = client.post(f"/boards/{board['id']}/items", json={"item_id": it["id"]})
        assert r.status_code == 201
    ideas = client.get(f"/boards/{board['id']}/ideas", params={"k": 8, "explain": 1}).json()
    assert _stages(ideas)[0] == ("prepare", "prepare/board")
    assert _stages(ideas)[-3:] == [
        ("rank", "rank/noop"),
        ("blend", "blend/dedup"),
        ("fallback", "fallback/popular"),
    ]
    assert {"dense/text", "visual/image"} <= set(_retrieved(_stages(ideas)))
    photo = client.get(f"/images/{item}").content
    visual = client.post(
        "/visual-search", files={"image": ("p.jpg", photo, "image/jpeg")}, data={"explain": "1"}
    ).json()
    assert _stages(visual) == [
        ("prepare", "prepare/visual"),
        ("retrieve", "visual/image"),
        *TAIL,
        ("blend", "blend/visual"),
        ("fallback", "fallback/popular"),
    ]


def test_rankers_plug_into_the_rank_stage_seeded_per_user_and_request(
    client: TestClient,
) -> None:
    assert {"rank/noop", "rank/shuffle"} <= set(RANKERS)
    with pytest.raises(ConfigError, match="Unknown ranker 'rank/nope'"):
        make_ranker("rank/nope")
    cand = Candidates.from_scores(np.arange(50), np.linspace(1, 0, 50), "lexical/bm25")
    shuffle = make_ranker("rank/shuffle", seed=3)
    one = shuffle(cand, RankQuery(user="ann", request_id="r1")).items
    assert list(one) == list(shuffle(cand, RankQuery(user="ann", request_id="r1")).items)
    assert list(one) != list(shuffle(cand, RankQuery(user="ann", request_id="r2")).items)
    assert list(one) != list(shuffle(cand, RankQuery(user="bob", request_id="r1")).items)
    assert sorted(one) == list(range(50))
    # the served search chain with the control arm: same candidates, another order
    engine = client.app.state.live.engine
    served = engine.search
    cfg = served.config.model_copy(update={"ranker": "rank/shuffle", "attribute_boost": 0.0})
    arm = build_surface(
        "search", cfg, engine.catalog, engine.sources, 0, served.env.resources
    )  # fmt: skip
    noop = build_surface(
        "search", cfg.model_copy(update={"ranker": "rank/noop"}), engine.catalog,
        engine.sources, 0, served.env.resources,
    )  # fmt: skip
    req = Request(surface="search", query="blue jeans", k=20, user_id="ann", request_id="r1")
    a, b = arm(req), noop(req)
    assert [s.component for s in a.stages if s.name == "rank"] == ["rank/shuffle"]
    assert len(a.items) == len(b.items) == 20 and a.next_cursor == b.next_cursor == 20
    assert a.item_ids != b.item_ids and a.item_ids == arm(req).item_ids  # replayable


@register_prepare("prepare/new_arrivals")
def prepare_new_arrivals(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Items created in the last ``params.days`` days, asked of the configured sources."""
    days = float(env.config.params.get("days", 30))
    now = np.datetime64(request.ts.astimezone(UTC).replace(tzinfo=None), "us")
    recent = env.catalog.created_at >= now - np.timedelta64(int(days * 86400), "s")
    skip = np.union1d(np.flatnonzero(~recent), env.indices(request.exclude))
    query = SourceQuery(item_filter=request.item_filter, exclude=skip)
    probes = {name: Probe(query) for name in env.config.sources}
    return Prepared(probes, need, item_filter=request.item_filter, exclude=skip, keep_single=True)


@pytest.fixture(scope="module")
def dated_ws(datasets_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """40 products, every other one created in the last 30 days, 20 shoppers, one build."""
    t = load_fashion().products
    kinds = t.column("articleType").to_pylist()
    rows = t.take([i for i, a in enumerate(kinds) if a in ("Shirts", "Jeans")][:40]).to_pylist()
    now = datetime.now(UTC)
    for j, r in enumerate(rows):
        r["created_at"] = now - timedelta(days=1 + j // 2 if j % 2 == 0 else 60 + j)
    ws = Workspace(tmp_path_factory.mktemp("dated") / "ws")
    assert ingest_catalog(ws, [pa.Table.from_pylist(rows)]).quarantined == 0
    run_simulation(ws, SimulateSettings(users=20, days=1))
    build(ws)
    return ws


def test_a_surface_declared_in_config_is_served_without_code_elsewhere(
    dated_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "moodboard.toml"
    config.write_text(
        '[surfaces.new_arrivals]\nprepare = "prepare/new_arrivals"\n'
        'sources = ["popular/trending"]\nparams = { days = 30 }\n'
    )
    monkeypatch.setenv("MOODBOARD_CONFIG", str(config))
    with api_client(dated_ws.root, serve_settings()) as c:
        engine = c.app.state.live.engine
        page = c.get("/surfaces/new_arrivals", params={"k": 30, "explain": 1}).json()
        ids = [it["id"] for it in page["items"]]
        idx = engine.catalog.ids.indices(ids)
        now = np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us")
        recent = np.flatnonzero(engine.catalog.created_at >= now - np.timedelta64(30, "D"))
        assert sorted(idx) == sorted(recent) and len(ids) == 20  # only the new, all of them
        pop = engine.sources["popular/trending"].scores[idx]
        assert (np.diff(pop) <= 0).all() and pop[0] > 0  # the popular ones first
        assert page["surface"] == "new_arrivals" and page["next_cursor"] is None
        assert [s["component"] for s in page["explain"]["stages"]][:2] == [
            "prepare/new_arrivals",
            "popular/trending",
        ]
        short = c.get("/surfaces/new_arrivals", params={"k": 5}).json()
        assert [it["id"] for it in short["items"]] == ids[:5] and short["next_cursor"] == "5"
        assert c.get("/surfaces/nothing").status_code == 404
        no_item = c.get("/surfaces/related")
        assert no_item.status_code in (400, 422) and "item=" in no_item.json()["detail"]
        assert c.get("/surfaces/search", params={"q": "jeans", "k": 3}).json()["items"]


def test_search_serves_the_trained_ranker_over_the_rank_stage_input(client: TestClient) -> None:
    engine = client.app.state.live.engine
    stage = engine.search.rank
    assert isinstance(stage, LambdaMARTStage) and stage.model.depth == 100
    unranked = engine.search.with_rank(NoopRanker())
    moved = 0
    for q in ("blue jeans", "women watches", "casual shirts", "black heels"):
        page = client.get("/search", params={"q": q, "k": 10, "explain": 1}).json()
        ids = [it["id"] for it in page["items"]]
        ltr = [it["explain"]["scores"]["ltr"] for it in page["items"]]
        assert ltr == sorted(ltr, reverse=True) and [it["score"] for it in page["items"]] == ltr
        # the page is the ranker's order of what the chain's rank stage is given (asked on
        # the model thread, as the server asks: torch's numbers there are the served ones)
        asked = Request(surface="search", query=q, k=10)
        prepared, fused = model_thread().run(engine.search.rank_input, asked)
        ranked = model_thread().run(stage, fused, prepared.rank)
        theirs = np.asarray(ranked.scores["ltr"], dtype=np.float64)
        score_of = dict(zip(engine.catalog.ids.external(ranked.items), theirs, strict=True))
        # every served item has the ranker's score for it (so, with the page sorted by it, the
        # page is in the ranker's order) and comes from the ranker's best; the blend then puts
        # the items with every attribute the query names first, so a better-scored item
        # without them may sit below the tenth ("women watches": a unisex watch)
        assert [score_of[i] for i in ids] == pytest.approx(ltr, abs=1e-5)
        assert set(ids) <= set(engine.catalog.ids.external(ranked.items[:20]))
        # explain shows the features the ranker was given (popularity from popular/trending)
        pop = engine.sources["popular/trending"].scores[engine.catalog.ids.index(ids[0])]
        assert page["items"][0]["explain"]["features"]["popularity"] == pytest.approx(
            np.log1p(max(pop, 0)), rel=1e-5
        )
        plain = unranked.run(Request(surface="search", query=q, k=10)).candidates.items[:10]
        moved += ids != engine.catalog.ids.external(plain)
    assert moved >= 2  # the ranker changes pages, it does not just echo the fused order


class _Threads:
    """A surface that records which thread ran it."""

    def __init__(self, surface: object, seen: set[int]) -> None:
        self._surface, self._seen = surface, seen

    def run(self, request: Request) -> object:
        self._seen.add(threading.get_ident())
        return self._surface.run(request)

    def __getattr__(self, name: str) -> object:
        return getattr(self._surface, name)


def test_every_surface_request_runs_its_chain_on_the_one_model_thread(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = client.app.state.live.engine
    seen: set[int] = set()
    for name in ("search", "related", "feed", "popular"):
        monkeypatch.setitem(engine.surfaces, name, _Threads(engine.surfaces[name], seen))
    item = engine.catalog.ids.external([0])[0]
    for url in ("/search?q=blue+jeans", f"/related/{item}", "/feed/u1", "/popular"):
        for _ in range(3):
            assert client.get(url).status_code == 200, url
    assert client.get("/surfaces/search", params={"q": "red dress"}).status_code == 200
    assert seen == {model_thread().run(threading.get_ident)}  # one torch team serves them all
