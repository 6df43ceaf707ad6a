"""``rank/multihead`` served: the build trains it from the mini engine's labelled impressions,
and a surface declared with it ranks its first candidates by the calibrated heads' utility,
reading the user's actions accepted seconds ago."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from serving import api_client, serve_settings

from moodboard.config import Settings
from moodboard.data import Candidates
from moodboard.ingest import Workspace
from moodboard.rank import MULTIHEAD, MultiHeadInputs, RankQuery
from moodboard.simulate import load_tastes

SURFACES = ("feed", "related", "board", "visual")


def multihead_settings() -> Settings:
    """The test server's settings with ``rank/multihead`` declared on the four surfaces."""
    s = serve_settings()
    update = {n: getattr(s.surfaces, n).model_copy(update={"ranker": MULTIHEAD}) for n in SURFACES}
    s.surfaces = s.surfaces.model_copy(update=update)
    return s


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root, multihead_settings()) as c:
        yield c


def test_the_build_trains_it_from_labelled_impressions(mini_engine: Workspace) -> None:
    path = mini_engine.version_path(mini_engine.current_artifact())
    manifest = json.loads((path / "manifest.json").read_text())
    entry = manifest["components"][MULTIHEAD]
    assert entry["trained"] is True and entry["rows"] >= entry["config"]["min_rows"]
    assert entry["positives"]["click"] > 0 and (path / entry["path"] / "model.pt").is_file()
    assert manifest["data"]["events_until"] and manifest["bots"]["path"] == "bots.parquet"


def test_declared_surfaces_rank_their_first_candidates_by_utility(
    client: TestClient, served_ws: Workspace
) -> None:
    engine = client.app.state.live.engine
    user = next(u for u in sorted(load_tastes(served_ws)) if len(engine.history(u)) >= 5)
    page = client.get(f"/feed/{user}", params={"k": 12, "explain": 1}).json()
    assert MULTIHEAD in [s["component"] for s in page["explain"]["stages"]]
    scores = [it["explain"]["scores"] for it in page["items"]]
    assert all(0 <= s["p_click"] <= 1 and "utility" in s for s in scores)
    item = page["items"][0]["id"]
    related = client.get(f"/related/{item}", params={"k": 8, "explain": 1}).json()
    assert MULTIHEAD in [s["component"] for s in related["explain"]["stages"]]
    deep = client.get(f"/feed/{user}", params={"k": 10, "cursor": 150, "explain": 1})
    assert deep.status_code == 200 and len(deep.json()["items"]) == 10  # past the scored depth


def test_the_ranker_reads_the_actions_posted_seconds_ago(client: TestClient) -> None:
    engine = client.app.state.live.engine
    model = engine.surfaces["feed"].env.resources[MULTIHEAD]
    user, now = "multihead-realtime", datetime.now(UTC)
    items = engine.catalog.ids.external(list(range(6)))
    events = [
        {"type": "click", "user_id": user, "item_id": i, "ts": str(now - timedelta(seconds=9 - j))}
        for j, i in enumerate(items)
    ]
    assert client.post("/events", json={"events": events}).is_success
    seen: list[tuple[RankQuery, Candidates]] = []
    inputs = model.inputs

    def observed(query: RankQuery, cand: Candidates) -> MultiHeadInputs:
        seen.append((query, cand))
        return inputs(query, cand)

    object.__setattr__(model, "inputs", observed)  # the served stage's own callable, watched
    try:
        assert client.get(f"/feed/{user}", params={"k": 5}).status_code == 200
    finally:
        object.__setattr__(model, "inputs", inputs)
    query, cand = seen[-1]
    assert [r[1] for r in query.recent] == items and query.user == user
    x = inputs(query, cand)
    newest_first = engine.catalog.ids.indices(items[::-1]).tolist()
    assert x.history_items[0, : len(items)].tolist() == newest_first
    assert x.dense_column("user_n_click")[0] == len(items)
