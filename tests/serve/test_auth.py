"""Who may call what: keys, the web app's public key, the shopper's session, CORS."""

from __future__ import annotations

import io
import json
import logging
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving import KEYS, api_client, auth_headers, serve_settings

from moodboard.ingest import Workspace, ingest_catalog
from moodboard.serve.auth import SESSION_COOKIE
from moodboard.serve.keys import KEYS_FILE

ITEMS = [f"p{i}" for i in range(5)]
NO_KEYS = {"admin_key": None, "write_key": None, "public_key": None, "session_secret": None}


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    """A server over the built workspace; the client sends no key unless a test adds one."""
    with api_client(served_ws.root, auth="none") as c:
        yield c


@pytest.fixture(scope="module")
def ids(client: TestClient) -> dict[str, str]:
    """An item and a board (made with the write key) to aim the routes at."""
    item = client.get("/popular", params={"k": 1}).json()["items"][0]["id"]
    r = client.post("/boards", json={"user_id": "owner"}, headers=auth_headers("write"))
    assert r.status_code == 201, r.text
    return {"item": item, "board": r.json()["id"]}


@pytest.fixture
def tiny_ws(tmp_path: Path) -> Workspace:
    """A workspace with five products and no build: enough to post events and boards."""
    ws = Workspace(tmp_path / "ws")
    ingest_catalog(ws, [pa.table({"id": ITEMS, "title": [f"Item {i}" for i in ITEMS]})])
    return ws


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _click(item: str, type_: str = "click") -> dict:
    return {"user_id": "shopper", "type": type_, "item_id": item}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/search?q=dress"),
        ("GET", "/popular"),
        ("GET", "/related/{item}"),
        ("GET", "/feed/someone"),
        ("GET", "/products/{item}"),
        ("GET", "/images/{item}"),
        ("GET", "/boards/{board}"),
        ("GET", "/boards/{board}/ideas"),
        ("GET", "/users/owner/boards"),
        ("POST", "/visual-search"),
        ("GET", "/"),
        ("GET", "/s?q=dress"),
        ("GET", "/p/{item}"),
        ("GET", "/b/{board}"),
        ("GET", "/static/app.js"),
        ("GET", "/openapi.json"),
    ],
)
def test_reads_are_open_to_anyone(
    client: TestClient, ids: dict[str, str], method: str, path: str
) -> None:
    files = {"image": ("p.png", _png(), "image/png")} if method == "POST" else None
    r = client.request(method, path.format(**ids), files=files)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])


#: (method, path, JSON body, key sent, status): every protected route, refused.
REFUSED = [
    ("POST", "/events", {"events": [_click("{item}")]}, "none", 401),
    ("POST", "/boards", {"user_id": "x"}, "none", 401),
    ("POST", "/boards/{board}/items", {"item_id": "{item}"}, "none", 401),
    ("POST", "/admin/reload", None, "none", 401),
    ("GET", "/metrics", None, "none", 401),
    ("POST", "/events", {"events": [_click("{item}", "impression")]}, "public", 403),
    ("POST", "/boards", {"user_id": "x"}, "public", 403),
    ("POST", "/boards/{board}/items", {"item_id": "{item}"}, "public", 403),
    ("POST", "/admin/reload", None, "public", 403),
    ("GET", "/metrics", None, "public", 403),
    ("POST", "/admin/reload", None, "write", 403),
    ("GET", "/metrics", None, "write", 403),
    ("POST", "/events", {"events": [_click("{item}")]}, "unknown", 401),
    ("POST", "/admin/reload", None, "unknown", 401),
]


@pytest.mark.parametrize(("method", "path", "body", "auth", "status"), REFUSED)
def test_writes_and_admin_calls_need_the_right_key(
    client: TestClient,
    ids: dict[str, str],
    method: str,
    path: str,
    body: dict | None,
    auth: str,
    status: int,
) -> None:
    client.cookies.clear()  # no shopper session either
    headers = {"Authorization": "Bearer not-a-key"} if auth == "unknown" else auth_headers(auth)
    payload = json.loads(json.dumps(body).replace("{item}", ids["item"])) if body else None
    r = client.request(method, path.format(**ids), json=payload, headers=headers)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    if status == 401:
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert "key" in detail  # says which key to send
    else:
        assert f"{auth} key" in detail


def test_the_right_keys_are_accepted(client: TestClient, ids: dict[str, str]) -> None:
    events = {"events": [_click(ids["item"])]}
    for auth in ("write", "admin"):
        assert client.post("/events", json=events, headers=auth_headers(auth)).status_code == 200
    admin = auth_headers("admin")
    assert client.post("/admin/reload", headers=admin).status_code == 200
    assert "moodboard_requests_total" in client.get("/metrics", headers=admin).text
    r = client.post(f"/boards/{ids['board']}/items", json={"item_id": ids["item"]}, headers=admin)
    assert r.status_code == 201  # the admin key works wherever the write key does


def test_the_public_key_posts_only_shopper_events_and_at_most_100(
    client: TestClient, ids: dict[str, str]
) -> None:
    public = auth_headers("public")
    for t in ("click", "save", "add_to_cart", "purchase", "hide"):
        r = client.post("/events", json={"events": [_click(ids["item"], t)]}, headers=public)
        assert r.status_code == 200, (t, r.text)
    mixed = [_click(ids["item"]), _click(ids["item"], "impression")]
    r = client.post("/events", json={"events": mixed}, headers=public)
    assert r.status_code == 403 and "impression" in r.json()["detail"]
    many = [_click(ids["item"])] * 101
    r = client.post("/events", json={"events": many}, headers=public)
    assert r.status_code == 403 and "serve.public_max_events" in r.json()["detail"]
    assert client.post("/events", json={"events": many}, headers=auth_headers("write")).is_success


def test_public_event_posts_are_rate_limited_per_client(tiny_ws: Workspace) -> None:
    with api_client(tiny_ws.root, serve_settings(public_rate_per_min=3), auth="public") as c:
        for _ in range(3):
            assert c.post("/events", json={"events": [_click("p1")]}).status_code == 200
        r = c.post("/events", json={"events": [_click("p1")]})
        assert r.status_code == 429 and "serve.public_rate_per_min" in r.json()["detail"]
        assert int(r.headers["Retry-After"]) >= 1
        # the write key is not limited
        ok = c.post("/events", json={"events": [_click("p1")]}, headers=auth_headers("write"))
        assert ok.status_code == 200


def _shopper(c: TestClient) -> str:
    """Open a web page as a new shopper: the page sets the session cookie and names them."""
    c.cookies.clear()
    page = c.get("/")
    assert SESSION_COOKIE in page.cookies
    assert f'data-key="{KEYS["public"]}"' in page.text  # the page's JS posts events with it
    return re.search(r'data-user="(anon-[0-9a-f]+)"', page.text).group(1)


def test_a_shopper_writes_their_own_boards_and_no_one_elses(
    client: TestClient, ids: dict[str, str]
) -> None:
    c, item = client, ids["item"]
    ann = _shopper(c)
    assert ann in c.get("/boards").text  # the same session on the next page
    r = c.post("/boards", json={"title": "mine"})
    assert r.status_code == 201 and r.json()["user_id"] == ann
    board = r.json()["id"]
    r = c.post(f"/boards/{board}/items", json={"item_id": item, "user_id": ann})
    assert r.status_code == 201 and r.json()["item_ids"] == [item]
    r = c.post("/boards", json={"user_id": "someone-else"})
    assert r.status_code == 403 and "user_id" in r.json()["detail"]

    bob = _shopper(c)
    assert bob != ann
    r = c.post(f"/boards/{board}/items", json={"item_id": item})
    assert r.status_code == 403 and "another shopper" in r.json()["detail"]
    r = c.post(f"/boards/{ids['board']}/items", json={"item_id": item})  # made with a key
    assert r.status_code == 403
    c.cookies.clear()
    c.cookies.set(SESSION_COOKIE, "YW5u.forged")
    assert c.post(f"/boards/{board}/items", json={"item_id": item}).status_code == 401
    c.cookies.clear()
    assert c.get(f"/boards/{board}").json()["item_ids"] == [item]


def test_cross_site_posts_are_refused(tiny_ws: Workspace) -> None:
    evil = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    with api_client(tiny_ws.root, auth="none") as c:
        # the reproduction: a text/plain form post from another origin reloaded the artifact
        assert c.post("/admin/reload", content=b"{}", headers=evil).status_code == 401
        _shopper(c)
        body = json.dumps({"title": "planted"}).encode()
        r = c.post("/boards", content=body, headers=evil)
        assert r.status_code == 415 and "application/json" in r.json()["detail"]
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}):
            r = c.post("/boards", json={"title": "planted"}, headers=headers)
            assert r.status_code == 403, headers
        same = {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}
        assert c.post("/boards", json={"title": "mine"}, headers=same).status_code == 201
        write = {**auth_headers("write"), "Content-Type": "text/plain"}
        r = c.post("/events", content=json.dumps({"events": [_click("p1")]}), headers=write)
        assert r.status_code == 415


def test_cors_is_closed_unless_origins_are_configured(tiny_ws: Workspace) -> None:
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with api_client(tiny_ws.root, auth="none") as c:
        r = c.options("/events", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    settings = serve_settings(cors_origins=("https://shop.example",))
    with api_client(tiny_ws.root, settings, auth="none") as c:
        r = c.options("/events", headers=preflight)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://shop.example"
        r = c.options("/events", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"


def test_metrics_are_open_only_when_configured(tiny_ws: Workspace) -> None:
    with api_client(tiny_ws.root, serve_settings(public_metrics=True), auth="none") as c:
        assert c.get("/metrics").status_code == 200
        assert c.post("/admin/reload").status_code == 401


def test_keys_are_generated_once_into_the_workspace_and_never_logged(
    tiny_ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = serve_settings(**NO_KEYS)
    with api_client(tiny_ws.root, settings, auth="none") as c:
        path = tiny_ws.root / KEYS_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        keys = json.loads(path.read_text())
        assert set(keys) == {"admin_key", "write_key", "public_key", "session_secret"}
        assert len(set(keys.values())) == 4 and all(len(k) >= 32 for k in keys.values())
        admin = {"Authorization": f"Bearer {keys['admin_key']}"}
        assert c.post("/admin/reload", headers=admin).status_code == 200
        write = {"Authorization": f"Bearer {keys['write_key']}"}
        assert c.post("/events", json={"events": [_click("p1")]}, headers=write).is_success
        assert c.post("/admin/reload", headers=write).status_code == 403
        c.get("/")  # a page: renders the public key, signs a cookie
    with api_client(tiny_ws.root, serve_settings(**NO_KEYS), auth="none") as c:  # a restart
        assert json.loads(path.read_text()) == keys
        assert c.post("/admin/reload", headers=admin).status_code == 200
    configured = serve_settings(**{**NO_KEYS, "write_key": serve_settings().serve.write_key})
    with api_client(tiny_ws.root, configured, auth="write") as c:
        assert c.post("/events", json={"events": [_click("p1")]}).is_success
        assert c.post("/events", json={"events": [_click("p1")]}, headers=write).status_code == 401
    assert "generated" in caplog.text and str(path) in caplog.text
    for key in [*keys.values(), *KEYS.values()]:
        assert key not in caplog.text
        assert key not in repr(settings) and key not in str(configured.model_dump())


def test_moodboard_serve_prints_where_the_keys_are_not_the_keys(
    tiny_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import uvicorn
    from typer.testing import CliRunner

    from moodboard.cli import app

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.append(application))
    monkeypatch.delenv("MOODBOARD_SERVE__ADMIN_KEY", raising=False)
    threads = torch.get_num_threads()  # `serve` sets them for the server process
    try:
        res = CliRunner().invoke(app, ["serve", "-w", str(tiny_ws.root)])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    assert served
    path = tiny_ws.root / KEYS_FILE
    assert str(path) in res.output.replace("\n", "")
    for key in json.loads(path.read_text()).values():
        assert key not in res.output
