"""POST /events against hostile clients (issue 10): field names, sizes, timestamps, duplicates,
and a server that keeps starting and compacting whatever it was sent."""

from __future__ import annotations

import json
import time
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from serving import api_client, serve_settings
from typer.testing import CliRunner

from moodboard.cli import app as cli
from moodboard.data import columns as C
from moodboard.ingest import Workspace, all_events, ingest_catalog
from moodboard.ingest.segments import segment_paths

ITEMS = [f"p{i}" for i in range(5)]
CORE = {c.casefold() for c in (*C.EVENT_COLUMNS, C.PROPS)}


def _workspace(root: Path) -> Workspace:
    ws = Workspace(root)
    ingest_catalog(ws, [pa.table({"id": ITEMS, "title": [f"Item {i}" for i in ITEMS]})])
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _workspace(tmp_path_factory.mktemp("hostile") / "ws")


@pytest.fixture(scope="module")
def client(ws: Workspace) -> Iterator[TestClient]:
    with api_client(ws.root, serve_settings()) as c:
        yield c


def _click(eid: str, **extra: Any) -> dict[str, Any]:
    return {"event_id": eid, "user_id": "u", "type": "click", "item_id": "p1", **extra}


def _stored_props(ws: Workspace, client: TestClient) -> dict[str, dict[str, Any]]:
    client.app.state.wal.compact()
    t = all_events(ws)
    ids, props = t["event_id"].to_pylist(), t["props"].to_pylist()
    return {e: json.loads(p) if p else {} for e, p in zip(ids, props, strict=True)}


def test_two_case_variant_posts_compact_restart_and_status(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    with api_client(ws.root, serve_settings()) as c:
        assert c.post("/events", json={"events": [_click("a", Color="red")]}).status_code == 200
        assert c.post("/events", json={"events": [_click("b", color="blue")]}).status_code == 200
        assert c.app.state.wal.compact() == 2
        one = c.post("/events", json={"events": [_click("c", type2="x", TYPE="click")]})
        assert one.status_code == 422 and "'TYPE'" in json.dumps(one.json())
    with api_client(ws.root, serve_settings()) as c:  # starts again, then stops cleanly
        assert c.post("/events", json={"events": [_click("d", COLOR="x")]}).status_code == 200
    res = CliRunner().invoke(cli, ["status", "-w", str(ws.root), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["events_total"] == 3


def test_the_wal_settings_of_the_config_reach_the_server(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    settings = serve_settings()
    settings.ingest.wal.compact_interval_s = 0.1  # `[ingest.wal]` in moodboard.toml
    with api_client(ws.root, settings) as c:
        assert c.post("/events", json={"events": [_click("soon")]}).status_code == 200
        deadline = time.monotonic() + 10
        while not ws.events.files() and time.monotonic() < deadline:
            time.sleep(0.05)  # in the Parquet log after a compaction, not at the stop
        (part,) = ws.events.files()
        assert pq.read_table(part)["event_id"].to_pylist() == ["soon"]


def test_duplicate_ids_in_one_post_are_counted_once(ws: Workspace, client: TestClient) -> None:
    a, b = f"dup-{uuid.uuid4().hex}", f"dup-{uuid.uuid4().hex}"
    res = client.post("/events", json={"events": [_click(a), _click(b), _click(a)]})
    assert res.status_code == 200
    assert res.json()["accepted"] == 2 and res.json()["duplicates"] == [a]
    assert res.json()["event_ids"] == [a, b]
    stored = all_events(ws)["event_id"].to_pylist()
    assert stored.count(a) == 1 and stored.count(b) == 1


def test_many_distinct_names_are_a_422_naming_the_cap(client: TestClient) -> None:
    batch = [_click(f"k{i}", **{f"key_{i}": i}) for i in range(8_000)]
    res = client.post("/events", json={"events": batch})
    assert res.status_code == 422
    assert "ingest.max_extra_keys_per_batch" in res.json()["detail"]
    assert "8000" in res.json()["detail"]


def test_a_poisoned_wal_segment_does_not_stop_the_server(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    folder = ws.root / "events" / "wal"
    folder.mkdir(parents=True)
    lines = [_click("g1", ts="2026-01-05T10:00:00Z"), _click("bad", note="\ud800")]
    (folder / "000000000001.jsonl").write_text(json.dumps(lines[0]) + "\n")
    (folder / "000000000002.jsonl").write_text(json.dumps(lines[1]) + "\n")
    with api_client(ws.root, serve_settings()) as c:
        assert c.get("/healthz").status_code in (200, 503)  # serving (no artifact built here)
        assert c.post("/events", json={"events": [_click("after")]}).status_code == 200
    assert sorted(all_events(ws)["event_id"].to_pylist()) == ["after", "g1"]
    errors = list(ws.quarantine_dir.glob("wal-000000000002-*.error.json"))
    assert len(errors) == 1 and "surrogate" in json.loads(errors[0].read_text())["error"]
    assert segment_paths(folder) == []


# -- the property: accepted events are stored with exactly their fields; refusals say why ----

PLAIN = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
HOSTILE = st.one_of(
    st.sampled_from(
        ["color", "Color", "COLOR", "TYPE", "Item_ID", "props", "raw_ts", "_x", "_row", "ß", "SS"]
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=8),
    st.text("ab", min_size=65, max_size=66),
)
NAMES = st.one_of(PLAIN, PLAIN, PLAIN, HOSTILE)
VALUES = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
    st.lists(st.integers(0, 3), max_size=3),
    st.sampled_from(["é" * 4_096, "v" * 4_097]),
)
TIMES = {
    "recent": "2026-01-05T10:00:00Z",
    "retail": "2010-12-01T08:26:00",
    "future": "3000-01-01T00:00:00Z",
    "ancient": "1960-01-01T00:00:00Z",
    "garbage": "yesterday-ish",
}


@st.composite
def events(draw: st.DrawFn, tag: str) -> dict[str, Any]:
    when = draw(st.sampled_from(["recent"] * 6 + ["retail"] * 2 + sorted(TIMES)))
    ev = _click(f"{tag}-{draw(st.integers(0, 3))}", ts=TIMES[when])
    for name, value in draw(st.lists(st.tuples(NAMES, VALUES), max_size=4)):
        if name.casefold() not in CORE or name != name.casefold():
            ev[name] = value
    if draw(st.booleans()):
        ev["props"] = draw(st.dictionaries(NAMES, VALUES, max_size=3))
    return ev


def _extras(ev: dict[str, Any]) -> dict[str, Any]:
    props = ev.get("props") if isinstance(ev.get("props"), dict) else {}
    return {**props, **{k: v for k, v in ev.items() if k.casefold() not in CORE}}


def _acceptable(ev: dict[str, Any]) -> bool:
    """The issue's rules, written independently of the code under test."""
    if ev["ts"] not in (TIMES["recent"], TIMES["retail"]):
        return False
    top = [k for k in ev if k not in C.EVENT_COLUMNS and k != C.PROPS]
    names = [*top, *ev.get("props", {})]
    folded = [n.casefold() for n in names]
    if len(set(folded)) != len(folded) or any(f in CORE for f in folded):
        return False
    for n in names:
        if not n.strip() or n.startswith("_") or len(n) > 64:
            return False
        if any(unicodedata.category(ch) == "Cc" for ch in n):
            return False
    values = list(_extras(ev).values())
    return all(len(v if isinstance(v, str) else json.dumps(v)) <= 4_096 for v in values)


@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_accepted_event_is_stored_with_its_own_fields(
    data: st.DataObject, ws: Workspace, client: TestClient
) -> None:
    tag = uuid.uuid4().hex[:12]
    batch = data.draw(st.lists(events(tag), min_size=1, max_size=4))
    res = client.post("/events", json={"events": batch})
    first: dict[str, dict[str, Any]] = {}
    for ev in batch:
        first.setdefault(ev["event_id"], ev)
    stored = _stored_props(ws, client)
    mine = {k: v for k, v in stored.items() if k.startswith(tag)}
    event(f"status {res.status_code}")
    if all(_acceptable(ev) for ev in batch):
        assert res.status_code == 200, res.json()
        assert res.json()["accepted"] == len(first)
        assert mine == {eid: _extras(ev) for eid, ev in first.items()}
    else:
        assert res.status_code == 422, res.json()
        body = res.json()
        reasons = [r for e in body["errors"] for r in e["reasons"]]
        assert reasons and all(": " in r for r in reasons), body
        assert mine == {}
    assert segment_paths(ws.root / "events" / "wal")[:-1] == []  # compaction kept up


def test_the_server_stops_starts_and_compacts_after_the_property_run(
    ws: Workspace, client: TestClient
) -> None:
    before = all_events(ws).num_rows
    client.__exit__(None, None, None)  # shutdown stores what the WAL holds
    assert segment_paths(ws.root / "events" / "wal") == []
    client.__enter__()  # and the server starts again on the same workspace
    eid = f"end-{uuid.uuid4().hex}"
    assert client.post("/events", json={"events": [_click(eid)]}).json()["accepted"] == 1
    assert eid in _stored_props(ws, client) and all_events(ws).num_rows == before + 1
