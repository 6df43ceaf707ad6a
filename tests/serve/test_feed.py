"""``GET /feed/{user_id}`` on the simulated served workspace: personalized against true tastes.

The simulation saves each shopper's true favourite article types (``load_tastes``); the feed
of a shopper with history must hold far more of them than the popular page does.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serving import api_client

from moodboard.blend import EXPLORE
from moodboard.config import FeedConfig
from moodboard.data import Request
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace, all_events
from moodboard.retrieve import PopularSource, TrainingData
from moodboard.retrieve.two_tower import TwoTower
from moodboard.simulate import load_tastes
from moodboard.surfaces import build_surface
from moodboard.surfaces.feed import personalized

K = 24


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root) as c:
        yield c


@pytest.fixture(scope="module")
def known(client: TestClient, served_ws: Workspace) -> list[str]:
    """Up to 30 simulated shoppers the build saw interact with items."""
    engine = client.app.state.live.engine
    users = [u for u in sorted(load_tastes(served_ws)) if len(engine.history(u))]
    assert len(users) >= 20, len(users)
    return users[:30]


def _leaf(item: dict) -> str:
    return (item["category"] or "").rsplit("/", 1)[-1]


def _share(page: dict, favourites: tuple[str, ...]) -> float:
    return float(np.mean([_leaf(it) in favourites for it in page["items"]]))


def test_the_build_trains_two_tower_and_saves_histories(client: TestClient) -> None:
    engine = client.app.state.live.engine
    tt = engine.manifest["components"]["two_tower"]
    assert tt["examples"] > 0 and tt["loss"][-1] < tt["loss"][0]
    assert {"text", "image", "attributes"} <= set(tt["features"])
    assert isinstance(engine.recommenders["two_tower"], TwoTower)
    assert "two_tower" in personalized(engine.feed.env)
    assert engine.manifest["components"]["feed/histories"]["users"] == len(engine.histories)
    assert (engine.path / "two_tower" / "model.pt").is_file()


def test_the_build_trains_every_recommender_and_tunes_the_fusion(client: TestClient) -> None:
    engine = client.app.state.live.engine
    comp = engine.manifest["components"]
    names = ("two_tower", "sequence", "graph/walks", "user_interests", "ease")
    members = (*names, "popular/trending")  # popularity is tuned with them
    assert set(engine.recommenders) == set(names)
    assert personalized(engine.feed.env) == [
        n for n in members if comp["feed/fusion"]["weights"][n] > 0
    ]
    for name in names:
        assert comp[name]["path"] and 0.0 <= comp[name]["valid_ndcg@10"] <= 1.0, name
    assert comp["sequence"]["epochs"] >= 1 and comp["ease"]["refit"] is True
    fusion = comp["feed/fusion"]
    assert set(fusion["weights"]) == set(members) and fusion["valid_users"] >= 10
    # the tuned fusion is at least as good on the held-out items as every member alone
    assert fusion["valid_ndcg@10"] >= max(comp[n]["valid_ndcg@10"] for n in names) - 1e-9
    assert dict(engine.feed.config.fuse.weights) == fusion["weights"]
    assert engine.feed.config.fuse.k == fusion["k"]


def test_feed_matches_true_tastes_far_better_than_popularity(
    client: TestClient, served_ws: Workspace, known: list[str]
) -> None:
    tastes = load_tastes(served_ws)
    popular = client.get("/popular", params={"k": K}).json()
    feed_share, pop_share = [], []
    for u in known:
        page = client.get(f"/feed/{u}", params={"k": K}).json()
        assert len(page["items"]) == K and page["personalized"] is True
        favourites = tastes[u]["articleType"]
        feed_share.append(_share(page, favourites))
        pop_share.append(_share(popular, favourites))
    feed, pop = float(np.mean(feed_share)), float(np.mean(pop_share))
    print(f"feed {feed:.3f} vs popular {pop:.3f} over {len(known)} shoppers")
    assert feed >= 0.6 and feed >= pop + 0.25, (feed, pop)


def test_the_feed_leaves_out_what_the_user_engaged_with(
    client: TestClient, known: list[str]
) -> None:
    engine = client.app.state.live.engine
    for u in known[:10]:
        seen = set(engine.catalog.ids.external(engine.history(u)))
        page = client.get(f"/feed/{u}", params={"k": 60}).json()
        assert not seen & {it["id"] for it in page["items"]}


def test_an_unknown_user_gets_a_full_popular_and_explore_page(client: TestClient) -> None:
    r = client.get("/feed/somebody-new", params={"k": K, "explain": 1, "session": "s1"})
    assert r.status_code == 200
    page = r.json()
    assert len(page["items"]) == K and page["personalized"] is False
    sources = [it["explain"]["sources"][0] for it in page["items"]]
    n_explore = sources.count(EXPLORE)
    assert n_explore == int(K * 0.25)  # explore_share, at evenly spaced slots
    assert sources[3] == EXPLORE and sources[0] == "popular/trending"
    assert sources.count("popular/trending") == K - n_explore
    again = client.get("/feed/somebody-new", params={"k": K, "session": "s1"}).json()
    assert [it["id"] for it in again["items"]] == [it["id"] for it in page["items"]]
    other = client.get("/feed/somebody-new", params={"k": K, "session": "s2", "explain": 1})

    def explored(p: dict) -> set[str]:
        return {it["id"] for it in p["items"] if it["explain"]["sources"] == [EXPLORE]}

    assert len(explored(page)) == n_explore and explored(other.json()) != explored(page)


def test_feed_pages_on(client: TestClient, known: list[str]) -> None:
    for user in (known[0], "anonymous-pager"):
        first = client.get(f"/feed/{user}", params={"k": 10, "session": "p"}).json()
        second = client.get(
            f"/feed/{user}", params={"k": 10, "session": "p", "cursor": first["next_cursor"]}
        ).json()
        assert [it["position"] for it in second["items"]] == list(range(11, 21))
        assert not {it["id"] for it in first["items"]} & {it["id"] for it in second["items"]}
        both = client.get(f"/feed/{user}", params={"k": 20, "session": "p"}).json()
        ids = [it["id"] for it in both["items"]]
        assert ids == [it["id"] for it in first["items"] + second["items"]]


def test_feed_pages_are_logged_as_impressions_of_the_user(
    client: TestClient, served_ws: Workspace, known: list[str]
) -> None:
    page = client.get(f"/feed/{known[1]}", params={"k": 6}).json()
    client.app.state.wal.flush()
    ev = all_events(served_ws).to_pandas()
    imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
    assert sorted(imp["position"]) == list(range(1, 7))
    assert set(imp["user_id"]) == {known[1]} and set(imp["surface"]) == {"feed"}
    assert list(imp.sort_values("position")["item_id"]) == [it["id"] for it in page["items"]]


def test_feed_filters_and_bad_parameters(client: TestClient, known: list[str]) -> None:
    page = client.get(f"/feed/{known[2]}", params={"k": 8, "category": "Watches"}).json()
    assert len(page["items"]) == 8 and all(_leaf(it) == "Watches" for it in page["items"])
    assert client.get(f"/feed/{known[2]}", params={"k": 0}).status_code == 422
    assert client.get(f"/feed/{known[2]}", params={"cursor": "x"}).status_code == 422


def _watch_lover(catalog) -> PopularSource:
    """A source of the contract named ``user_interests`` that loves watches."""
    loves = np.array([(c or "").endswith("Watches") for c in catalog.category], float)
    data = TrainingData(catalog=catalog, item_features={"popularity": loves})
    return PopularSource(name="user_interests").fit(data)


def test_the_feed_fuses_every_loaded_recommender_with_provenance(
    client: TestClient, known: list[str]
) -> None:
    engine = client.app.state.live.engine
    sources = {
        "popular/trending": engine.sources["popular/trending"],
        "two_tower": engine.sources["two_tower"],
        "user_interests": _watch_lover(engine.catalog),
    }
    untuned = FeedConfig().fuse  # the recommenders at equal weights, popularity out
    cfg = engine.feed.config.model_copy(update={"fuse": untuned})
    chain = build_surface("feed", cfg, engine.catalog, sources, 0, engine.feed.env.resources)
    assert personalized(chain.env) == ["two_tower", "user_interests"]
    history = engine.history(known[3])
    page = chain.run(Request(surface="feed", user_id=known[3], k=40)).candidates
    assert {"two_tower", "user_interests"} <= {s for p in page.sources for s in p.split("+")}
    assert not set(history.tolist()) & set(page.items.tolist())
    assert np.isfinite(page.score("user_interests")).any()
    cold = chain.run(Request(surface="feed", user_id="new", k=40, session="7")).candidates
    assert not {"two_tower", "user_interests"} & set(cold.sources)


def test_action_weights_steer_the_walks_and_are_saved_with_histories(
    client: TestClient, known: list[str]
) -> None:
    engine = client.app.state.live.engine
    walked = engine.recommenders["graph/walks"]
    reach = {}  # items of the known users' histories the walks graph reaches from
    for u in known:
        w = engine.histories.weights(u)
        assert len(w) == len(engine.history(u)) and (w > 0).all()
        for i in engine.history(u).tolist():
            got = set(walked.from_items(np.array([i]), 200).items.tolist())
            if len(got) >= 3:
                reach[i] = got
    (a, got_a), (b, got_b) = next(
        (x, y) for x in reach.items() for y in reach.items() if not x[1] & y[1]
    )
    cfg = engine.feed.config.model_copy(update={"fuse": FeedConfig().fuse})  # not the tuned one
    sources = {"popular/trending": engine.sources["popular/trending"], "graph/walks": walked}
    chain = build_surface("feed", cfg, engine.catalog, sources, 0, engine.feed.env.resources)
    two = Request(surface="feed", items=tuple(engine.catalog.ids.external([a, b])), k=3)
    only_a = chain.run(two.model_copy(update={"weights": (1.0, 0.0)})).candidates.head(3)
    only_b = chain.run(two.model_copy(update={"weights": (0.0, 1.0)})).candidates.head(3)
    assert set(only_a.items) <= got_a and set(only_b.items) <= got_b
    with pytest.raises(ConfigError, match="one weight per history item"):
        chain.run(two.model_copy(update={"weights": (1.0,)}))
