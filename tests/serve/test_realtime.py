"""Real time: actions accepted by ``POST /events`` move the next ``/feed`` page, no rebuild.

The feed's history is the build's, followed by what the server accepted since
(``RecentActions``, the chains' ``recent`` resource).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving import api_client

from moodboard.ingest import Workspace
from moodboard.simulate import load_tastes
from moodboard.surfaces.recent import RecentActions, RecentConfig

K = 24


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root) as c:
        yield c


def _share(page: dict, leaf: str) -> float:
    return float(np.mean([(it["category"] or "").endswith("/" + leaf) for it in page["items"]]))


def _clicks(client: TestClient, user: str, leaf: str, n: int) -> list[dict]:
    """``n`` clicks and saves of ``user`` on items of one leaf category."""
    cat = client.app.state.live.engine.catalog
    rows = np.flatnonzero(cat.leaf_category() == leaf)[:n]
    now = datetime.now(UTC)
    return [
        {
            "type": "save" if j % 2 else "click",
            "user_id": user,
            "item_id": cat.ids.external([int(i)])[0],
            "ts": (now - timedelta(seconds=n - j)).isoformat(),
        }
        for j, i in enumerate(rows)
    ]


def _rare_leaf(client: TestClient, page: dict) -> str:
    """A category with at least 10 products that the page does not show."""
    cat = client.app.state.live.engine.catalog
    shown = {(it["category"] or "").rsplit("/", 1)[-1] for it in page["items"]}
    counts = Counter(cat.leaf_category().tolist())
    return next(c for c, n in counts.most_common() if n >= 10 and c not in shown and c)


def test_a_new_shoppers_clicks_personalize_their_next_feed_page(client: TestClient) -> None:
    user = "realtime-new-shopper"
    before = client.get(f"/feed/{user}", params={"k": K}).json()
    assert before["personalized"] is False
    leaf = _rare_leaf(client, before)
    r = client.post("/events", json={"events": _clicks(client, user, leaf, 8)})
    assert r.status_code == 200, r.text
    after = client.get(f"/feed/{user}", params={"k": K}).json()
    assert after["personalized"] is True
    assert _share(after, leaf) >= 0.3, (leaf, _share(after, leaf))


def test_a_known_shoppers_feed_shifts_toward_what_they_just_did(
    client: TestClient, served_ws: Workspace
) -> None:
    engine = client.app.state.live.engine
    user = next(u for u in sorted(load_tastes(served_ws)) if len(engine.history(u)) >= 5)
    before = client.get(f"/feed/{user}", params={"k": K}).json()
    assert before["personalized"] is True
    leaf = _rare_leaf(client, before)
    assert client.post("/events", json={"events": _clicks(client, user, leaf, 10)}).is_success
    after = client.get(f"/feed/{user}", params={"k": K}).json()
    assert _share(after, leaf) >= _share(before, leaf) + 0.15, (leaf, _share(after, leaf))
    clicked = {e["item_id"] for e in _clicks(client, user, leaf, 10)}
    assert not clicked & {it["id"] for it in after["items"]}  # what they engaged with stays out


def test_the_buffer_is_bounded_and_ignores_retries_hides_and_impressions() -> None:
    recent = RecentActions(RecentConfig(per_user=3, users=2))
    rows = [{"type": "click", "user_id": "a", "item_id": f"i{j}"} for j in range(5)]
    assert recent.add(rows) == 5 and [a.item_id for a in recent("a")] == ["i2", "i3", "i4"]
    retry = {"type": "save", "user_id": "b", "item_id": "x", "event_id": "e1"}
    assert recent.add([retry, retry]) == 1 and recent("b")[0].weight == 3.0
    assert recent.add([{"type": "hide", "user_id": "b", "item_id": "y"}]) == 0
    assert recent.add([{"type": "impression", "user_id": "b", "item_id": "y"}]) == 0
    recent.add([{"type": "click", "user_id": "c", "item_id": "z", "ts": "not a time"}])
    assert len(recent) == 2 and recent("a") == ()  # "a" was the least recently active
    assert recent(None) == () and recent("c")[0].ts.tzinfo is not None
