"""Experiments in a running server: each shopper is served their arm's chain and every
impression logs the arms and the page's latency; created, changed and stopped experiments are
picked up without a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from serving import api_client, serve_settings

from moodboard.experiment.assign import arm_of
from moodboard.experiment.spec import ExperimentSpec
from moodboard.experiment.store import ExperimentStore
from moodboard.ingest import Workspace, all_events

EXP = "feed-shuffle"
USERS = [f"exp-user-{i}" for i in range(24)]


def _settings():
    s = serve_settings()
    s.experiment = s.experiment.model_copy(update={"reload_every_s": 0.05})
    return s


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root, _settings()) as c:
        yield c


def _spec(name: str = EXP, **kw) -> ExperimentSpec:
    arms = [
        {"name": "control", "weight": 0.5},
        {"name": "shuffled", "weight": 0.5,
         "overrides": {"surfaces.feed.ranker": "rank/shuffle"}},
    ]  # fmt: skip
    return ExperimentSpec.model_validate({"name": name, "arms": arms, "layer": "feed"} | kw)


def _feed(client: TestClient, user: str) -> dict:
    r = client.get(f"/feed/{user}", params={"k": 12, "user": user})
    assert r.status_code == 200, r.text
    return r.json()


def _wait_for_reload() -> None:
    time.sleep(0.1)


def test_arms_are_served_logged_and_stopped_without_restart(
    client: TestClient, served_ws: Workspace
) -> None:
    before = {u: _feed(client, u) for u in USERS[:6]}
    assert all("arms" not in p for p in before.values())  # no experiment yet
    store = ExperimentStore(served_ws.root)
    settings = client.app.state.settings
    spec = store.create(_spec(), settings, None)
    _wait_for_reload()
    pages = {u: _feed(client, u) for u in USERS}
    arms = {u: p["arms"][EXP] for u, p in pages.items()}
    assert arms == {u: arm_of(spec, u, settings.experiment.buckets) for u in USERS}
    assert set(arms.values()) == {"control", "shuffled"}
    # the control arm sees the configured feed; the shuffled arm another order
    for u in USERS[:6]:
        same = [i["id"] for i in pages[u]["items"]] == [i["id"] for i in before[u]["items"]]
        assert same == (arms[u] == "control"), (u, arms[u])
    client.app.state.wal.flush()
    ev = all_events(served_ws).to_pandas()
    for u, page in pages.items():
        imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
        assert len(imp) == len(page["items"]) > 0
        assert {json.loads(a)[EXP] for a in imp["arms"]} == {arms[u]}
        lat = {json.loads(p)["latency_ms"] for p in imp["props"]}
        assert len(lat) == 1 and 0 < lat.pop() < 60_000
    # stopped: the next pages carry no arms, the shuffled shoppers get the configured feed
    store.stop(EXP, "enough", datetime.now(UTC))
    _wait_for_reload()
    after = {u: _feed(client, u) for u in USERS[:6]}
    assert all("arms" not in p for p in after.values())
    for u in USERS[:6]:
        assert [i["id"] for i in after[u]["items"]] == [i["id"] for i in before[u]["items"]]


def test_a_hand_edited_overlap_keeps_the_previous_set(
    client: TestClient, served_ws: Workspace
) -> None:
    store = ExperimentStore(served_ws.root)
    settings = client.app.state.settings
    store.create(_spec("overlap-a", traffic=0.5), settings, None)
    _wait_for_reload()
    first = {u: _feed(client, u).get("arms", {}) for u in USERS}
    # a file written by hand into the same buckets of the layer is refused as a set
    bad = _spec("overlap-b", buckets=(0, 5000))
    store.save(bad)
    _wait_for_reload()
    again = {u: _feed(client, u).get("arms", {}) for u in USERS}
    assert again == first
    assert not any("overlap-b" in a for a in again.values())
    store.path("overlap-b").unlink()
    store.stop("overlap-a", "done")


def test_an_interleaving_experiment_merges_both_arms_and_credits_clicks(
    client: TestClient, served_ws: Workspace
) -> None:
    from moodboard.config import Settings
    from moodboard.experiment.run import report_experiment

    store = ExperimentStore(served_ws.root)
    settings = client.app.state.settings
    spec = _spec("feed-interleave", kind="interleave", layer="interleave")
    store.create(spec, settings, None)
    _wait_for_reload()
    users = [f"il-user-{i}" for i in range(12)]
    pages = {u: _feed(client, u) for u in users}
    assert all(p["arms"] == {"feed-interleave": "interleaved"} for p in pages.values())
    client.app.state.wal.flush()
    ev = all_events(served_ws).to_pandas()
    clicks = []
    for u, page in pages.items():
        imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
        teams = [json.loads(p)["scores"]["team"] for p in imp.sort_values("position")["props"]]
        assert set(teams) == {0.0, 1.0} and abs(teams.count(0.0) - teams.count(1.0)) <= 2
        # every shopper clicks the first two items of the fused ranking (team 0, control)
        ids = list(imp.sort_values("position")["item_id"])
        mine = [i for i, t in zip(ids, teams, strict=True) if t == 0.0][:2]
        clicks += [{"user_id": u, "type": "click", "item_id": i, "surface": "feed",
                    "request_id": page["request_id"]} for i in mine]  # fmt: skip
    r = client.post("/events", json={"events": clicks})
    assert r.status_code == 200 and r.json()["accepted"] == len(clicks)
    client.app.state.wal.flush()
    result = report_experiment(served_ws, "feed-interleave", Settings()).analysis
    il = result["interleaving"]
    assert il["winner"] == "A" and il["wins_a"] == len(users) and il["clicks"] == [24, 0]
    assert result["verdict"]["decision"] == "no_ship"
    store.stop("feed-interleave", "done")
