"""What a page request or an uploaded image can do to the server: bounded, refused with a 4xx
that says what to fix, never a 500 and never a page lost to its impression log (issue 10)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving import api_client, serve_settings
from typer.testing import CliRunner

from moodboard.cli import app as cli_app
from moodboard.data import Request
from moodboard.ingest import Workspace
from moodboard.understand.upload import decode_upload


@pytest.fixture(scope="module")
def client(served_ws: Workspace) -> Iterator[TestClient]:
    with api_client(served_ws.root, serve_settings(max_boards_per_user=3)) as c:
        yield c


@pytest.fixture(scope="module")
def item_id(client: TestClient) -> str:
    return client.get("/popular", params={"k": 1}).json()["items"][0]["id"]


@pytest.fixture(scope="module")
def board_id(client: TestClient, item_id: str) -> str:
    board = client.post("/boards", json={"user_id": "hostile", "title": "t"}).json()
    assert client.post(f"/boards/{board['id']}/items", json={"item_id": item_id}).status_code == 201
    return board["id"]


def _pages(item_id: str, board_id: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("/search", {"q": "dress"}),
        ("/popular", {}),
        (f"/related/{item_id}", {}),
        ("/feed/ann", {}),
        (f"/boards/{board_id}/ideas", {}),
        ("/users/ann/boards", {}),
    ]


@pytest.mark.parametrize(
    "cursor",
    ["²", "1" * 5000, str(10**19), "1001", "-1", "1e3", " 5", "５"],
)
def test_a_cursor_that_is_not_small_ascii_digits_is_422_on_every_page(
    client: TestClient, item_id: str, board_id: str, cursor: str
) -> None:
    for path, params in _pages(item_id, board_id):
        r = client.get(path, params={**params, "cursor": cursor, "k": 1})
        assert r.status_code == 422, (path, cursor, r.status_code)
        assert "cursor" in r.json()["detail"], r.json()
        assert len(r.json()["detail"]) < 400  # a 5,000-digit cursor is not echoed whole


def test_a_deep_cursor_is_refused_fast_and_the_deepest_allowed_page_is_served(
    client: TestClient, item_id: str, board_id: str
) -> None:
    for path, params in _pages(item_id, board_id)[:5]:
        t0 = time.perf_counter()
        r = client.get(path, params={**params, "cursor": "50000000", "k": 1})
        assert r.status_code == 422 and "max_offset" in r.json()["detail"], path
        assert time.perf_counter() - t0 < 2.0, path
        deepest = client.get(path, params={**params, "cursor": "1000", "k": 1})
        assert deepest.status_code == 200, (path, deepest.text)


def test_sources_never_search_past_their_index(client: TestClient) -> None:
    engine = client.app.state.live.engine
    dense = engine.sources["dense/text"]
    vec = dense.vectors[:1]
    _, idx = dense.search(vec, 10_000_000)  # the landed tree allocated 10M slots
    assert idx.shape == (1, len(engine.catalog))
    item = engine.catalog.ids.external([0])[0]
    page = engine.related.run(Request(surface="related", item_id=item, k=50_000_000))
    assert len(page.candidates) <= len(engine.catalog)


def test_a_whitespace_user_is_anonymous_on_every_route(
    client: TestClient, item_id: str, board_id: str
) -> None:
    for path, params in _pages(item_id, board_id)[:5]:
        r = client.get(path, params={**params, "user": "  ", "k": 2})
        assert r.status_code == 200, (path, r.text)
    r = client.get("/feed/%20%20", params={"k": 2})
    assert r.status_code == 200 and r.json()["user_id"] == "anonymous", r.text
    saved = client.post(f"/boards/{board_id}/items", json={"item_id": item_id, "user_id": "  "})
    assert saved.status_code == 201, saved.text  # saved as the board's owner
    blank = client.post("/boards", json={"user_id": " \t "})
    assert blank.status_code == 422 and "user_id" in blank.json()["detail"]


def test_a_page_is_served_when_its_impressions_cannot_be_logged(
    client: TestClient, served_ws: Workspace
) -> None:
    before = json.loads(_status(served_ws)).get("impressions_dropped", 0)
    wal = client.app.state.wal
    wal.close()  # a WAL that refuses writes (as after a disk error)
    try:
        r = client.get("/popular", params={"k": 5})
        assert r.status_code == 200 and len(r.json()["items"]) == 5
        metrics = client.get("/metrics").text
    finally:
        wal.open()
    assert "moodboard_impressions_dropped_total 5.0" in metrics
    assert json.loads(_status(served_ws))["impressions_dropped"] == before + 5


def _status(ws: Workspace) -> str:
    res = CliRunner().invoke(cli_app, ["status", "-w", str(ws.root), "--json"])
    assert res.exit_code == 0, res.output
    return res.stdout


def _upload(client: TestClient, data: bytes, **form: str):
    return client.post("/visual-search", files={"image": ("x", data, "image/png")}, data=form)


def _encoded(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "BMP"])
def test_images_in_other_formats_are_refused_naming_the_allowed_ones(
    client: TestClient, fmt: str
) -> None:
    r = _upload(client, _encoded(Image.new("RGB", (64, 64), "red"), fmt))
    assert r.status_code == 422, r.text
    assert "JPEG, PNG or WebP" in r.json()["detail"]


def test_a_crop_of_non_ascii_digits_is_422(client: TestClient) -> None:
    png = _encoded(Image.new("RGB", (64, 64), "red"), "PNG")
    for crop in ("²,0,40,40", "1" * 30 + ",0,40,40", "0,0,40,40,1"):
        r = _upload(client, png, crop=crop)
        assert r.status_code == 422 and "crop" in r.json()["detail"], (crop, r.text)


def test_a_huge_image_is_refused_from_its_header_before_decoding(client: TestClient) -> None:
    bomb = _encoded(Image.new("L", (9400, 9400)), "PNG", optimize=True)
    assert len(bomb) < 400_000
    t0 = time.perf_counter()
    r = _upload(client, bomb)
    assert r.status_code == 422 and "pixels" in r.json()["detail"], r.text
    assert time.perf_counter() - t0 < 1.0  # decoding it took 1.2 s and 680 MB


def test_a_large_jpeg_is_decoded_at_a_reduced_scale() -> None:
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8))
    data = _encoded(big, "JPEG", quality=70)
    assert max(decode_upload(data).size) <= 1000  # 1/4 scale: the model needs 224 px
    crop = decode_upload(data, (1000, 1000, 896, 896))
    assert min(crop.size) >= 224 and max(crop.size) <= 448


def test_uploads_over_the_decode_bound_get_503_with_retry_after(client: TestClient) -> None:
    png = _encoded(Image.new("RGB", (64, 64), "red"), "PNG")
    assert _upload(client, png).status_code == 200
    serve = client.app.state.settings.serve
    slots, wait = client.app.state.decode_slots, serve.decode_wait_s
    held = [slots.acquire(timeout=1) for _ in range(serve.max_concurrent_decodes)]
    serve.decode_wait_s = 0.05  # other requests hold every slot
    try:
        r = _upload(client, png)
    finally:
        serve.decode_wait_s = wait
        for _ in held:
            slots.release()
    assert all(held) and r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert _upload(client, png).status_code == 200


def test_an_upload_waiting_for_a_decode_slot_does_not_hold_up_other_requests(
    client: TestClient,
) -> None:
    png = _encoded(Image.new("RGB", (64, 64), "blue"), "PNG")
    serve = client.app.state.settings.serve
    assert _upload(client, png).status_code == 200
    slots, wait = client.app.state.decode_slots, serve.decode_wait_s
    held = [slots.acquire(timeout=1) for _ in range(serve.max_concurrent_decodes)]
    serve.decode_wait_s = 1.5  # the upload below waits this long for a slot, then gets 503
    waiting = ThreadPoolExecutor(1)
    try:
        upload = waiting.submit(_upload, client, png)
        time.sleep(0.2)  # the upload is waiting now
        t0 = time.perf_counter()
        health = client.get("/healthz")
        answered_in = time.perf_counter() - t0
        assert not upload.done()
        r = upload.result(timeout=30)
    finally:
        serve.decode_wait_s = wait
        for _ in held:
            slots.release()
        waiting.shutdown()
    assert all(held) and health.status_code == 200 and answered_in < 0.5
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert _upload(client, png).status_code == 200  # the wait held no slot


def test_boards_of_a_user_page_and_are_capped(client: TestClient) -> None:
    made = [client.post("/boards", json={"user_id": "capped", "title": f"b{i}"}) for i in range(3)]
    assert [r.status_code for r in made] == [201, 201, 201]
    over = client.post("/boards", json={"user_id": "capped"})
    assert over.status_code == 422 and "max_boards_per_user" in over.json()["detail"]
    first = client.get("/users/capped/boards", params={"k": 2}).json()
    assert [b["title"] for b in first["boards"]] == ["b0", "b1"]
    rest = client.get("/users/capped/boards", params={"k": 2, "cursor": first["next_cursor"]})
    assert [b["title"] for b in rest.json()["boards"]] == ["b2"]
    assert rest.json()["next_cursor"] is None


def test_board_fields_have_length_limits(client: TestClient, board_id: str) -> None:
    long = "x" * 10_000
    for body in (
        {"item_id": long},
        {"item_id": "1", "request_id": long},
        {"item_id": "1", "surface": long},
    ):
        assert client.post(f"/boards/{board_id}/items", json=body).status_code == 422
    assert client.post("/boards", json={"user_id": "u", "title": long}).status_code == 422
    assert client.get(f"/boards/{long}").status_code == 422
