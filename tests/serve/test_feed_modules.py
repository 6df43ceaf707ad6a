"""The home feed as rows of modules (``GET /feed/{user}?modules=1``) on the mini engine.

The rows name ranges of the flat ``items`` that tile them without overlap, their propensities
are the policy's own probabilities (drawn as often as they say), a request replays to the
same page, and every impression carries its row's propensity.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving import api_client, serve_settings

from moodboard.data import Request
from moodboard.ingest import Workspace, all_events
from moodboard.surfaces.modules import MODULE, with_modules

K = 30


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root) as c:
        yield c


@pytest.fixture(scope="module")
def shopper(client: TestClient) -> str:
    """A simulated shopper with a history and a board with items (all four kinds apply)."""
    engine = client.app.state.live.engine
    boards = client.app.state.boards
    for u in engine.histories.users():
        if len(engine.history(u)) >= 3 and any(b.item_ids for b in boards.newest(u, 2)):
            return u
    pytest.fail("no simulated shopper with a history and a board")


def _modules(client: TestClient, user: str, **params: object) -> dict:
    r = client.get(f"/feed/{user}", params={"k": K, "modules": 1, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_module_rows_tile_the_top_of_the_page(client: TestClient, shopper: str) -> None:
    cfg = client.app.state.live.engine.feed.config.modules
    page = _modules(client, shopper, session="tile")
    rows, items = page["modules"], page["items"]
    assert len(rows) == cfg.max_modules and len(items) == K
    assert {r["kind"] for r in rows} <= {"board", "viewed", "trending", "new"}
    assert rows[0]["start"] == 0
    for a, b in itertools.pairwise(rows):
        assert a["end"] == b["start"]  # contiguous, no overlap
    for r in rows:
        assert r["end"] - r["start"] == cfg.per_module and 0 < r["propensity"] <= 1
        assert r["title"] and r["id"].split(":")[0] == r["kind"]
    assert rows[-1]["end"] < K  # the grid follows
    ids = [it["id"] for it in items]
    assert len(set(ids)) == len(ids)
    assert [it["position"] for it in items] == list(range(1, K + 1))
    trending = [r for r in rows if r["kind"] == "trending"]
    for r in trending:  # "Trending in <category>" holds that category's items
        leaf = r["id"].split(":", 1)[1]
        assert all(it["category"].endswith(leaf) for it in items[r["start"] : r["end"]])
    engine = client.app.state.live.engine
    history = set(engine.catalog.ids.external(engine.history(shopper)))
    assert not history & set(ids)  # engaged items stay out of the rows too
    watches = _modules(client, shopper, session="tile", category="Watches")
    assert watches["modules"] and all(it["category"].endswith("Watches") for it in watches["items"])


def test_without_modules_the_feed_is_unchanged(client: TestClient, shopper: str) -> None:
    plain = client.get(f"/feed/{shopper}", params={"k": K, "session": "x"}).json()
    off = client.get(f"/feed/{shopper}", params={"k": K, "session": "x", "modules": 0}).json()
    assert "modules" not in plain and "modules" not in off
    assert [it["id"] for it in plain["items"]] == [it["id"] for it in off["items"]]
    grid = _modules(client, shopper, session="x", k=K)
    shown = {it["id"] for r in grid["modules"] for it in grid["items"][r["start"] : r["end"]]}
    rest = [it["id"] for it in grid["items"][grid["modules"][-1]["end"] :]]
    assert rest == [i for i in (it["id"] for it in plain["items"]) if i not in shown][: len(rest)]


def test_the_policy_draws_rows_as_often_as_their_propensities(
    client: TestClient, shopper: str
) -> None:
    cfg = client.app.state.live.engine.feed.config.modules
    n = 80
    first, logged = Counter(), {}
    for s in range(n):
        row = _modules(client, shopper, session=f"mc-{s}", k=cfg.per_module)["modules"][0]
        first[row["kind"]] += 1
        logged.setdefault(row["kind"], set()).add(row["propensity"])
    greedy = max(logged, key=lambda kind: cfg.weights[kind])
    assert all(len(v) == 1 for v in logged.values())  # one probability per kind at row 1
    p = logged[greedy].pop()
    assert p == pytest.approx(1 - cfg.epsilon + cfg.epsilon / 4, abs=1e-6)  # 4 candidates
    assert abs(first[greedy] / n - p) <= 4 * np.sqrt(p * (1 - p) / n), (first, p)
    for kind, ps in logged.items():
        if kind != greedy:
            assert ps.pop() == pytest.approx(cfg.epsilon / 4, abs=1e-6)


def test_a_replayed_request_gets_the_same_page(client: TestClient, shopper: str) -> None:
    feed = with_modules(client.app.state.live.engine.feed, True)

    def layout(rid: str) -> tuple:
        res = feed.run(Request(surface="feed", user_id=shopper, k=K, request_id=rid))
        c = res.candidates
        return tuple(c.items.tolist()), tuple(np.nan_to_num(c.score(MODULE), nan=-1).tolist())

    assert layout("replay-1") == layout("replay-1")
    assert len({layout(f"replay-{i}") for i in range(12)}) > 1  # other ids draw other rows


def test_impressions_carry_the_rows_propensities(
    client: TestClient, served_ws: Workspace, shopper: str
) -> None:
    page = _modules(client, shopper, session="logged")
    client.app.state.wal.flush()
    ev = all_events(served_ws).to_pandas()
    imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
    imp = imp.sort_values("position")
    assert list(imp["item_id"]) == [it["id"] for it in page["items"]]
    props = [p if isinstance(p, dict) else json.loads(p) for p in imp["props"]]
    chance = list(imp["propensity"])
    for r in page["modules"]:
        for j in range(r["start"], r["end"]):
            assert chance[j] == pytest.approx(r["propensity"]) and props[j]["module"] == r["id"]
            # what off-policy evaluation reads: the policy's row and the modules it drew among
            assert props[j]["module_row"] == r["row"] and props[j]["module_among"] == r["among"]
    assert [r["row"] for r in page["modules"]] == list(range(len(page["modules"])))
    among = page["modules"][0]["among"]
    assert len(among) == 4 and {r["id"] for r in page["modules"]} <= set(among)
    assert all(r["among"] == among for r in page["modules"])
    grid = range(page["modules"][-1]["end"], len(page["items"]))
    assert all(chance[j] == 1.0 and props[j]["explored"] is False for j in grid)
    assert all("module" not in props[j] and "module" not in props[j]["scores"] for j in grid)


def test_pages_of_one_session_continue_each_other(client: TestClient, shopper: str) -> None:
    first = _modules(client, shopper, session="pages", k=12)
    second = _modules(client, shopper, session="pages", k=12, cursor=first["next_cursor"])
    both = _modules(client, shopper, session="pages", k=24)
    ids = [it["id"] for it in first["items"] + second["items"]]
    assert ids == [it["id"] for it in both["items"]]
    # ranges are of each page's own items: a row cut by the page's edge is cut there too
    assert all(0 <= r["start"] < r["end"] <= 12 for r in first["modules"] + second["modules"])


def test_shoppers_are_listed_only_in_demo_mode(client: TestClient, ws_copy: Workspace) -> None:
    r = client.get("/demo/shoppers")
    assert r.status_code == 404 and "serve.demo_mode" in r.json()["detail"]
    with api_client(ws_copy.root, serve_settings(demo_mode=True)) as demo:
        listed = demo.get("/demo/shoppers", params={"k": 5}).json()["shoppers"]
        assert demo.get("/demo/shoppers", params={"k": 51}).status_code == 422
    engine = client.app.state.live.engine
    sizes = [s["history"] for s in listed]
    assert len(listed) == 5 and sizes == sorted(sizes, reverse=True)
    assert all(len(engine.history(s["id"])) == s["history"] > 0 for s in listed)


def test_new_arrivals_are_the_newest_dated_items_and_undated_ones_come_last() -> None:
    from moodboard.surfaces.modules import _by_age

    created = np.array(
        ["2026-01-02", "NaT", "2026-03-01", "2025-12-31", "NaT"], dtype="datetime64[us]"
    )
    catalog = type("C", (), {"created_at": created, "__len__": lambda self: 5})()
    env = type("Env", (), {"catalog": catalog})()
    assert _by_age(env).tolist() == [2, 0, 3, 4, 1]  # undated: the rows added last first
