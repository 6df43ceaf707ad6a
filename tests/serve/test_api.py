"""The HTTP API on a real built workspace: every route's happy path and its error paths."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving import api_client, serve_settings

from mini import rebuild_settings
from moodboard.build import build
from moodboard.ingest import Workspace, all_events
from moodboard.rank import FEATURES


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root, serve_settings(max_upload_mb=1.0)) as c:
        yield c


def _events(ws: Workspace, client: TestClient):
    client.app.state.wal.flush()
    return all_events(ws).to_pandas()


def test_health_names_the_live_artifact(client: TestClient, served_ws: Workspace) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["artifact"] == served_ws.current_artifact()


def test_health_is_503_before_the_first_build(tmp_path) -> None:
    ws = Workspace(tmp_path / "empty").init()
    with api_client(ws.root) as c:
        assert c.get("/healthz").status_code == 503
        r = c.get("/search", params={"q": "red dress"})
        assert r.status_code == 503 and "moodboard build" in r.json()["detail"]


def test_search_returns_a_page_of_products_and_pages_on(client: TestClient) -> None:
    r = client.get("/search", params={"q": "red dress", "k": 12, "user": "u1"})
    assert r.status_code == 200
    page = r.json()
    assert page["surface"] == "search" and len(page["request_id"]) == 32
    assert len(page["items"]) == 12
    first = page["items"][0]
    assert {"id", "title", "image_url", "price", "score", "position"} <= set(first)
    assert first["image_url"].startswith("/images/")
    top = [it["title"].lower() for it in page["items"][:6]]
    assert sum("dress" in t for t in top) >= 4, top
    assert [it["position"] for it in page["items"]] == list(range(1, 13))
    nxt = client.get(
        "/search", params={"q": "red dress", "k": 12, "cursor": page["next_cursor"]}
    ).json()
    assert nxt["items"][0]["position"] == 13
    assert not {i["id"] for i in page["items"]} & {i["id"] for i in nxt["items"]}


def test_search_filters_apply_inside_retrieval(client: TestClient) -> None:
    r = client.get("/search", params={"q": "shirt", "category": "Watches", "k": 10})
    assert r.status_code == 200
    ids = [it["id"] for it in r.json()["items"]]
    assert ids and all("Watches" in client.get(f"/products/{i}").json()["category"] for i in ids)
    r = client.get("/search", params={"q": "dress", "price_max": 1000, "k": 10})
    assert all(it["price"] is not None and it["price"] <= 1000 for it in r.json()["items"])


def test_explain_gives_sources_features_scores_and_timings(client: TestClient) -> None:
    page = client.get("/search", params={"q": "blue jeans", "k": 5, "explain": 1}).json()
    assert {"understand", "lexical/bm25", "total"} <= set(page["timings_ms"])
    assert page["query"]["raw"] == "blue jeans"
    for it in page["items"]:
        ex = it["explain"]
        assert ex["sources"] and set(ex["sources"]) <= {
            "lexical/bm25",
            "dense/text",
            "dense/text_image",
            "popular/trending",
        }
        assert set(ex["features"]) == set(FEATURES)
        assert "retrieval" in ex["scores"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "q"),
        ({"q": "dress", "k": 0}, "'k'"),
        ({"q": "dress", "k": 5000}, "'k'"),
        ({"q": "dress", "cursor": "abc"}, "cursor"),
        ({"q": "dress", "filter": "colour"}, "attribute:value"),
        ({"q": "dress", "filter": "fabric:silk"}, "no attribute 'fabric'"),
        ({"q": "dress", "price_min": 50, "price_max": 10}, "price_min"),
        ({"q": "dress", "price_min": -1}, "price_min"),
    ],
)
def test_bad_search_parameters_are_422_saying_what_to_fix(
    client: TestClient, params: dict, needle: str
) -> None:
    r = client.get("/search", params=params)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_every_page_is_logged_as_impressions_and_a_click_joins_it(
    client: TestClient, served_ws: Workspace
) -> None:
    page = client.get("/search", params={"q": "watch", "k": 8, "user": "joiner"}).json()
    clicked = page["items"][2]
    r = client.post(
        "/events",
        json={
            "events": [
                {
                    "user_id": "joiner",
                    "type": "click",
                    "item_id": clicked["id"],
                    "surface": "search",
                    "position": 3,
                    "request_id": page["request_id"],
                }
            ]
        },
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
    ev = _events(served_ws, client)
    imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
    assert sorted(imp["position"]) == list(range(1, 9))
    assert set(imp["user_id"]) == {"joiner"} and set(imp["surface"]) == {"search"}
    assert imp["propensity"].notna().all()
    click = ev[(ev["type"] == "click") & (ev["request_id"] == page["request_id"])]
    joined = click.merge(imp, on=["request_id", "item_id"], suffixes=("", "_imp"))
    assert len(joined) == 1 and joined["position_imp"].iloc[0] == 3


def test_impressions_log_each_items_sources_and_scores_and_the_page_is_unchanged(
    client: TestClient, served_ws: Workspace
) -> None:
    plain = client.get("/search", params={"q": "watch", "k": 6, "user": "props"}).json()
    assert all("explain" not in it for it in plain["items"])  # the page JSON has no props
    page = client.get(
        "/search", params={"q": "watch", "k": 6, "user": "props", "explain": "true"}
    ).json()
    ev = _events(served_ws, client)
    imp = ev[(ev["type"] == "impression") & (ev["request_id"] == page["request_id"])]
    props = {r.item_id: json.loads(r.props) for r in imp.itertuples()}
    assert len(props) == 6
    for it in page["items"]:
        want = it["explain"]
        assert props[it["id"]]["sources"] == want["sources"] and want["sources"]
        assert props[it["id"]]["scores"] == {
            n: v for n, v in want["scores"].items() if v is not None
        }
    assert any(len(p["scores"]) >= 2 for p in props.values())


def test_bad_events_are_422_and_nothing_is_stored(client: TestClient, served_ws: Workspace) -> None:
    before = len(_events(served_ws, client))
    r = client.post(
        "/events",
        json={
            "events": [
                {"user_id": "x", "type": "click", "item_id": "does-not-exist"},
                {"user_id": "x", "type": "teleport"},
            ]
        },
    )
    assert r.status_code == 422
    body = r.json()
    assert {e["row"] for e in body["errors"]} == {0, 1}
    assert len(_events(served_ws, client)) == before
    assert client.post("/events", json={"events": []}).status_code == 422
    assert client.post("/events", json={"nope": 1}).status_code == 422


def test_products_and_images(client: TestClient) -> None:
    item = client.get("/search", params={"q": "handbag", "k": 1}).json()["items"][0]
    p = client.get(f"/products/{item['id']}")
    assert p.status_code == 200 and p.json()["title"] == item["title"]
    img = client.get(item["image_url"])
    assert img.status_code == 200 and img.headers["content-type"].startswith("image/")
    assert client.get("/products/nope").status_code == 404
    assert client.get("/images/nope").status_code == 404


def test_related_products_share_the_category_and_exclude_the_item(client: TestClient) -> None:
    item = client.get("/search", params={"q": "watch", "k": 1}).json()["items"][0]
    cat = client.get(f"/products/{item['id']}").json()["category"]
    page = client.get(f"/related/{item['id']}", params={"k": 12}).json()
    assert page["surface"] == "related" and len(page["items"]) == 12
    ids = [it["id"] for it in page["items"]]
    assert item["id"] not in ids
    same = sum(client.get(f"/products/{i}").json()["category"] == cat for i in ids)
    assert same >= 6, (cat, same)
    assert client.get("/related/nope").status_code == 404


def _jpeg(client: TestClient, item_id: str) -> bytes:
    return client.get(f"/images/{item_id}").content


def test_visual_search_finds_the_photographed_product(client: TestClient) -> None:
    item = client.get("/search", params={"q": "heels", "k": 1}).json()["items"][0]
    data = _jpeg(client, item["id"])
    r = client.post("/visual-search", files={"image": ("p.jpg", data, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["id"] == item["id"]
    w, h = Image.open(io.BytesIO(data)).size
    r = client.post(
        "/visual-search",
        files={"image": ("p.jpg", data, "image/jpeg")},
        data={"crop": f"0,0,{w // 2},{h // 2}", "k": "5"},
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 5


def test_visual_search_takes_words_that_refine_the_photo(client: TestClient) -> None:
    item = client.get("/search", params={"q": "men shirts", "k": 1}).json()["items"][0]
    photo = {"image": ("p.jpg", _jpeg(client, item["id"]), "image/jpeg")}
    alone = client.post("/visual-search", files=photo, data={"k": "10"}).json()
    assert "query" not in alone  # a photo alone: the page keeps its shape
    r = client.post("/visual-search", files=photo, data={"text": "in black", "explain": "true"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["query"]["attributes"] == {"baseColour": ["black"]}
    assert page["query"]["text_source"] == "dense/text_image" and "parsed" in page["query"]
    colours = [client.get(f"/products/{i['id']}").json()["attributes"]["baseColour"]
               for i in page["items"][:10]]  # fmt: skip
    assert colours.count("Black") >= 8, colours
    for bad in ("x" * 201, "?!."):
        r = client.post("/visual-search", files=photo, data={"text": bad})
        assert r.status_code == 422 and "text" in r.text, r.text


def test_visual_search_errors(client: TestClient) -> None:
    bad = client.post("/visual-search", files={"image": ("x.jpg", b"not an image", "image/jpeg")})
    assert bad.status_code in (400, 422) and "image" in bad.json()["detail"]
    item = client.get("/search", params={"q": "shirt", "k": 1}).json()["items"][0]
    data = _jpeg(client, item["id"])
    crop = client.post(
        "/visual-search", files={"image": ("p.jpg", data, "image/jpeg")}, data={"crop": "1,2"}
    )
    assert crop.status_code == 422 and "x,y,w,h" in crop.json()["detail"]
    outside = client.post(
        "/visual-search",
        files={"image": ("p.jpg", data, "image/jpeg")},
        data={"crop": "0,0,99999,99999"},
    )
    assert outside.status_code == 422
    buf = io.BytesIO()
    Image.effect_noise((1400, 1400), 64).convert("RGB").save(buf, "PNG")
    assert len(buf.getvalue()) > 2**20
    big = client.post("/visual-search", files={"image": ("big.png", buf.getvalue(), "image/png")})
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    assert client.post("/visual-search").status_code == 422


def test_boards_save_and_ideas(client: TestClient, served_ws: Workspace) -> None:
    r = client.post("/boards", json={"user_id": "ann", "title": "summer"})
    assert r.status_code == 201
    board = r.json()
    page = client.get("/search", params={"q": "dress", "k": 4, "user": "ann"}).json()
    for it in page["items"][:3]:
        r = client.post(
            f"/boards/{board['id']}/items",
            json={"item_id": it["id"], "request_id": page["request_id"], "surface": "search"},
        )
        assert r.status_code == 201
    saved = client.get(f"/boards/{board['id']}").json()["item_ids"]
    assert saved == [it["id"] for it in page["items"][:3]]
    assert [b["id"] for b in client.get("/users/ann/boards").json()["boards"]] == [board["id"]]
    ev = _events(served_ws, client)
    saves = ev[(ev["type"] == "save") & (ev["board_id"] == board["id"])]
    assert set(saves["item_id"]) == set(saved)
    assert set(saves["request_id"]) == {page["request_id"]}
    ideas = client.get(f"/boards/{board['id']}/ideas", params={"k": 10}).json()
    ids = [it["id"] for it in ideas["items"]]
    assert len(ids) == 10 and not set(ids) & set(saved)
    engine = client.app.state.live.engine
    kind = engine.catalog.attribute("articleType")
    saved_kinds = {kind[i] for i in engine.catalog.ids.indices(saved)}
    alike = sum(kind[i] in saved_kinds for i in engine.catalog.ids.indices(ids))
    assert alike >= 5, ([it["title"] for it in ideas["items"]], saved_kinds)


def test_board_errors(client: TestClient) -> None:
    assert client.get("/boards/nope").status_code == 404
    assert client.get("/boards/nope/ideas").status_code == 404
    assert client.post("/boards", json={"title": "no user"}).status_code == 422
    board = client.post("/boards", json={"user_id": "bob"}).json()
    r = client.post(f"/boards/{board['id']}/items", json={"item_id": "nope"})
    assert r.status_code == 404
    assert client.post("/boards/nope/items", json={"item_id": "x"}).status_code == 404
    empty = client.get(f"/boards/{board['id']}/ideas", params={"k": 6}).json()
    assert len(empty["items"]) == 6  # popular fallback: never an empty page


def test_popular_page(client: TestClient) -> None:
    page = client.get("/popular", params={"k": 20}).json()
    assert page["surface"] == "popular" and len(page["items"]) == 20


def test_metrics_are_prometheus_text(client: TestClient, served_ws: Workspace) -> None:
    client.get("/search", params={"q": "dress"})
    text = client.get("/metrics").text
    assert 'moodboard_request_seconds_bucket{le="0.015",surface="search"}' in text
    assert 'moodboard_requests_total{status="200",surface="search"}' in text
    assert f'moodboard_artifact_info{{version="{served_ws.current_artifact()}"}} 1.0' in text


def test_a_new_build_goes_live_without_failed_requests(
    client: TestClient, served_ws: Workspace
) -> None:
    before = client.get("/healthz").json()["artifact"]
    failures: list[int] = []
    served: list[int] = []
    stop = threading.Event()

    gap = [0.05]  # light steady traffic while the build runs, then back to back at the swap

    def hammer() -> None:
        while not stop.wait(gap[0]):
            r = client.get("/search", params={"q": "shirt", "k": 5})
            served.append(r.status_code)
            if r.status_code != 200:
                failures.append(r.status_code)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        version = build(served_ws, settings=rebuild_settings())["version"]
        gap[0] = 0.0
        time.sleep(0.2)
        r = client.post("/admin/reload").json()
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert r == {"artifact": version, "previous": before, "swapped": True}
    assert client.get("/healthz").json()["artifact"] == version
    assert failures == [] and len(served) > 50
