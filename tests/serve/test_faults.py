"""Server faults are answered as what they are: 503/507 with Retry-After, never a 400 or a 500.

A full disk while logging events is 507; the workspace database held by another process (a
real second process here, as a `moodboard ingest` or `status` would hold it) leaves reads
working and makes writes 503 after a bounded wait; a retry after the fault clears succeeds.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from serving import api_client, serve_settings

from moodboard.ingest import Workspace, segments

#: Opens the database like another moodboard process would, says "held", keeps it until stdin
#: closes. argv: path, "ro" or "rw", and an optional product id to insert (an ingestion).
_HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    path, mode = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + 30
    while True:
        try:
            con = duckdb.connect(path, read_only=mode == "ro")
            break
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    if len(sys.argv) > 3:
        con.execute("INSERT INTO products (id, title) VALUES (?, 'new arrival')", [sys.argv[3]])
    print("held", flush=True)
    sys.stdin.read()
    con.close()
    """
)


@contextmanager
def held(ws: Workspace, mode: str, new_product: str | None = None) -> Iterator[None]:
    """Another process holding the workspace database until the block ends."""
    args = [sys.executable, "-c", _HOLDER, str(ws.db_path), mode]
    if new_product:
        args.append(new_product)
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        if proc.wait(timeout=30) != 0:
            pytest.fail("the process holding the database failed")


def _busy(r) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert "held by another process" in r.json()["detail"]


def _item(ws: Workspace) -> str:
    return ws.products_table().column("id")[0].as_py()


def test_a_full_disk_is_507_with_retry_after_and_the_retry_is_stored(
    served_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, fail = segments._sync_data, [True]

    def disk_full_once(fd: int) -> None:
        if fail and fail.pop():
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    event = {"event_id": uuid.uuid4().hex, "user_id": "u-disk", "type": "click"}
    event["item_id"] = _item(served_ws)
    with api_client(served_ws.root) as c:
        monkeypatch.setattr(segments, "_sync_data", disk_full_once)
        r = c.post("/events", json={"events": [event]})
        assert r.status_code == 507, r.text
        assert int(r.headers["Retry-After"]) >= 1
        assert "nothing was stored" in r.json()["detail"]
        assert str(served_ws.root) not in r.json()["detail"]
        again = c.post("/events", json={"events": [event]})
        assert again.status_code == 200, again.text
        assert again.json()["event_ids"] == [event["event_id"]]
        assert event["event_id"] in c.app.state.wal.read_all().column("event_id").to_pylist()


def test_reads_share_the_database_with_a_reader_process_and_writes_wait_then_503(
    ws_copy: Workspace,
) -> None:
    ws = ws_copy
    with api_client(ws.root, serve_settings(db_wait_s=0.3)) as c:
        board = c.post("/boards", json={"user_id": "u-held", "title": "held"}).json()
        with held(ws, "ro"):  # a `moodboard status` run
            assert c.get(f"/boards/{board['id']}").json()["title"] == "held"
            assert [b["id"] for b in c.get("/users/u-held/boards").json()["boards"]] == [
                board["id"]
            ]
            _busy(c.post("/boards", json={"user_id": "u-held", "title": "second"}))
            _busy(c.post(f"/boards/{board['id']}/items", json={"item_id": _item(ws)}))
        retried = c.post(f"/boards/{board['id']}/items", json={"item_id": _item(ws)})
        assert retried.status_code == 201, retried.text
        assert c.get(f"/boards/{board['id']}").json()["item_ids"] == [_item(ws)]
        events = c.app.state.wal.read_all().to_pylist()
        saves = [e for e in events if e["type"] == "save" and e["board_id"] == board["id"]]
        assert len(saves) == 1  # the refused add logged nothing; its retry logged one save


def test_a_writer_process_makes_board_reads_and_new_item_events_503_not_500(
    ws_copy: Workspace,
) -> None:
    ws = ws_copy  # the writer adds a product: not the shared workspace
    new_item = f"new-{uuid.uuid4().hex[:8]}"
    event = {"event_id": uuid.uuid4().hex, "user_id": "u-new", "type": "click", "item_id": new_item}
    with api_client(ws.root, serve_settings(db_wait_s=0.3)) as c:
        wal = c.app.state.wal
        wal.config = wal.config.model_copy(update={"catalog_refresh_s": 0.0})
        board = c.post("/boards", json={"user_id": "u-writer"}).json()
        with held(ws, "rw", new_product=new_item):  # a `moodboard ingest` run
            _busy(c.get(f"/boards/{board['id']}"))
            _busy(c.post("/events", json={"events": [event]}))
        assert c.get(f"/boards/{board['id']}").status_code == 200
        retried = c.post("/events", json={"events": [event]})
        assert retried.status_code == 200, retried.text  # the new product is known now
