"""Every request body is bounded on every route, counted as its bytes arrive: a chunked body
over the limit is refused with 413 long before the client has sent it all."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from serving import api_client, auth_headers, serve_settings

from moodboard.ingest import Workspace
from moodboard.serve.app import create_app

CHUNK = 64 * 1024
CHUNKS = 512  # 32 MB in all
PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server (uvicorn, in a thread) over an empty workspace, with small body limits."""
    ws = Workspace(tmp_path_factory.mktemp("limits") / "ws").init()
    app = create_app(ws.root, serve_settings(max_body_kb=256, max_upload_mb=1.0))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(30)


@pytest.mark.parametrize(
    ("path", "ctype", "head", "setting"),
    [
        ("/events", "application/json", b'{"events": [', "serve.max_body_kb"),
        ("/boards", "application/json", b'{"title": "', "serve.max_body_kb"),
        ("/visual-search", "multipart/form-data; boundary=xyz", PART, "serve.max_upload_mb"),
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read(
    server: str, path: str, ctype: str, head: bytes, setting: str
) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield head
        for _ in range(CHUNKS):
            sent += 1
            yield b" " * CHUNK

    headers = {**auth_headers("write"), "Content-Type": ctype}
    r = httpx.post(f"{server}{path}", content=body(), headers=headers, timeout=60)
    assert r.status_code == 413, r.text
    assert setting in r.json()["detail"]
    assert sent < CHUNKS // 2, f"the client sent {sent} of {CHUNKS} chunks before the 413"


def test_a_declared_length_over_the_limit_is_refused_on_every_route(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").init()
    with api_client(ws.root, serve_settings(max_body_kb=16)) as c:
        big = b"{" + b" " * 20_000 + b"}"
        for path in ("/events", "/boards", "/admin/reload", "/healthz"):
            r = c.post(path, content=big, headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and "serve.max_body_kb" in r.json()["detail"], path
        small = {"events": [{"user_id": "u", "type": "click", "item_id": "x"}]}
        assert c.post("/events", json=small).status_code == 422  # under the limit: checked


def test_the_default_body_limit_takes_10000_events() -> None:
    import json
    import uuid

    event = {
        "event_id": uuid.uuid4().hex,
        "ts": "2026-12-05T01:07:55.123456+00:00",
        "user_id": "anon-0123456789abcdef",
        "type": "impression",
        "item_id": "159701",
        "surface": "search",
        "position": 24,
        "request_id": uuid.uuid4().hex,
        "propensity": 0.0416666,
        "query": "red summer dress",
    }
    body = json.dumps({"events": [event] * 10_000}, indent=2).encode()
    assert len(body) <= serve_settings().serve.max_body_kb * 1024
