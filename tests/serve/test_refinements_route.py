"""``GET /refinements`` on the mini engine: chips that apply, related searches, and hostile
input answered with empty lists or a 422 that says what to fix, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from serving import api_client

from moodboard.ingest import Workspace


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root) as c:
        yield c


def test_a_chip_applied_gives_results_with_its_facet(client: TestClient) -> None:
    r = client.get("/refinements", params={"q": "shirts"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["request_id"] and body["chips"] and body["related_searches"]
    chip = next(c for c in body["chips"] if c["filter"])
    assert set(chip) >= {"label", "query", "facet"} and chip["label"] == chip["value"]
    page = client.get("/search", params={"q": chip["query"], "filter": chip["filter"], "k": 10})
    assert page.status_code == 200
    ids = [it["id"] for it in page.json()["items"]]
    assert ids
    for item_id in ids:
        product = client.get(f"/products/{item_id}").json()
        assert product["attributes"][chip["facet"]] == chip["value"]
    related = [s["query"] for s in body["related_searches"]]
    assert "shirts" not in related and len(related) == len(set(related))


def test_k_bounds_both_lists(client: TestClient) -> None:
    body = client.get("/refinements", params={"q": "watches", "k": 2}).json()
    assert 1 <= len(body["chips"]) <= 2 and 1 <= len(body["related_searches"]) <= 2


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({}, 422, "q"),
        ({"q": "shirts", "k": 0}, 422, "k"),
        ({"q": "shirts", "k": 51}, 422, "k"),
        ({"q": "x" * 501}, 422, "500"),
        ({"q": "shirts", "filter": "nocolon"}, 422, "attribute:value"),
        ({"q": "shirts", "filter": "madeUp:x"}, 422, "no attribute"),
        ({"q": "shirts", "user": "u" * 201}, 422, "user"),
    ],
)
def test_bad_input_is_a_422_that_says_what_to_fix(
    client: TestClient, params: dict, status: int, says: str
) -> None:
    r = client.get("/refinements", params=params)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


@pytest.mark.parametrize("q", ["", "   ", "\x00\x01\x1b", "!!!"])
def test_a_query_without_a_word_gets_empty_lists(client: TestClient, q: str) -> None:
    r = client.get("/refinements", params={"q": q})
    assert r.status_code == 200, r.text
    assert r.json()["chips"] == [] and r.json()["related_searches"] == []


def test_control_characters_long_queries_and_unknown_users_get_an_answer(
    client: TestClient,
) -> None:
    clean = client.get("/refinements", params={"q": "watches"}).json()
    odd = client.get("/refinements", params={"q": "\x00watches\x07\u202e", "user": "nobody-\x01"})
    assert odd.status_code == 200, odd.text
    assert [c["query"] for c in odd.json()["chips"]] == [c["query"] for c in clean["chips"]]
    long = client.get("/refinements", params={"q": " ".join(["watches"] * 62)})
    assert long.status_code == 200, long.text
