"""Compaction's fast path: plain segments stored through DuckDB's JSON reader, exactly as the
row-by-row path stores them; anything else takes that path and keeps its reasons."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import moodboard.ingest.walcompact as walcompact
from moodboard.ingest import EventWAL, WALConfig, Workspace, all_events, ingest_catalog
from moodboard.ingest.events import EventWriter, check_events, stored_columns
from moodboard.ingest.segments import segment_paths
from moodboard.ingest.walfast import plain_events
from moodboard.ingest.walread import segment_batches

ITEMS = [f"p{i}" for i in range(50)]
MANUAL = WALConfig(background=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A workspace with a 50-product catalog."""
    w = Workspace(tmp_path / "ws")
    ingest_catalog(w, [pa.table({"id": ITEMS, "title": [f"Item {i}" for i in ITEMS]})])
    return w


def _page(n: int = 24, request: str = "r1", **props: Any) -> list[dict[str, Any]]:
    """A served page's impressions, as the server logs them (nested props, numbers)."""
    return [
        {
            "event_id": uuid.uuid4().hex,
            "user_id": "u1",
            "type": "impression",
            "item_id": ITEMS[(i * 7) % len(ITEMS)],
            "query": "robe légère «été»",
            "surface": "search",
            "position": i + 1,
            "request_id": request,
            "propensity": 1.0 if i % 3 else 0.125,
            "props": {
                "sources": ["lexical/bm25", "dense/text"][: 1 + i % 2],
                "scores": {"lexical/bm25": 12.5 / (i + 1), "dense/text": 0.1 + i / 3},
                "explored": i % 5 == 0,
                **props,
            },
        }
        for i in range(n)
    ]


def _client(n: int = 12) -> list[dict[str, Any]]:
    """Client events: text positions, an arms object, props with unicode, a board save."""
    return [
        {
            "event_id": f"c{i}",
            "ts": f"2026-01-05T10:{i:02d}:00Z",
            "user_id": f"u{i % 3}",
            "type": "save" if i % 4 == 0 else "click",
            "item_id": ITEMS[i],
            "position": str(i + 1),
            "request_id": f"r{i // 4}",
            "board_id": "b1" if i % 4 == 0 else None,
            "arms": {"ranker": "on" if i % 2 else "off"},
            "props": {"note": "ü ✓", "n": i} if i % 2 else {},
        }
        for i in range(n)
    ]


def _closed(wal: EventWAL) -> list[Path]:
    wal.flush()
    return wal._seg.rotate()


def _by_id(t: pa.Table) -> dict[str, dict[str, Any]]:
    rows = {}
    for r in t.to_pylist():
        for c in ("props", "arms"):
            r[c] = json.loads(r[c]) if r[c] is not None else None
        rows[r["event_id"]] = r
    return rows


def test_plain_segments_store_what_the_row_by_row_path_stores(ws: Workspace) -> None:
    wal = EventWAL(ws, MANUAL).open()
    try:
        for j in range(5):
            wal.log(_page(request=f"r{j}"))
        assert wal.accept(_client()).ok
        closed = _closed(wal)
        with ws.connect() as con:
            EventWriter(ws, con)  # the catalog table the checks read
            fast, why = plain_events(con, closed)
            assert fast is not None, why
            slow = [check_events(con, b)[1] for b in segment_batches(closed, 1_000)]
        assert _by_id(stored_columns(fast)) == _by_id(pa.concat_tables(slow))
        assert fast.num_rows == 5 * 24 + 12
    finally:
        wal.close()


def test_the_servers_impressions_are_compacted_without_the_row_by_row_path(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError("the row-by-row path ran")

    with EventWAL(ws, MANUAL) as wal:
        for j in range(20):
            wal.log(_page(request=f"r{j}"))
        monkeypatch.setattr(walcompact, "check_events", refuse)
        assert wal.compact() == 20 * 24
    assert all_events(ws).num_rows == 20 * 24


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([*_page(3)[:2], {**_page(1)[0], "item_id": "gone"}], "item_in_catalog"),
        (_page(2) + _page(1, _secret=1), "field_names_allowed"),
        (_page(2) + _page(1, Sources="x"), "field_names_distinct"),
        (_page(2) + _page(1, big="x" * 5000), "field_limits"),
    ],
    ids=["unknown item", "reserved props key", "props keys differ in case", "value too long"],
)
def test_a_failing_logged_row_is_quarantined_with_its_reason_and_the_rest_stored(
    ws: Workspace, rows: list[dict[str, Any]], reason: str
) -> None:
    with EventWAL(ws, MANUAL) as wal:
        wal.log(rows)
        assert wal.compact() == len(rows) - 1
    (qfile,) = ws.quarantine_dir.glob("events-*.jsonl")
    (bad,) = [json.loads(line) for line in qfile.read_text().splitlines()]
    assert reason in json.dumps(bad)
    assert bad["event_id"] == rows[-1]["event_id"]


def test_extra_fields_and_a_torn_line_take_the_row_by_row_path(ws: Workspace) -> None:
    folder = ws.root / "events" / "wal"
    folder.mkdir(parents=True)
    extra = {**_client(1)[0], "event_id": "x1", "color": "red"}
    lines = [json.dumps(r) for r in [*_client(3), extra]]
    (folder / "000000000003.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:30])
    with EventWAL(ws, MANUAL):
        pass
    stored = _by_id(all_events(ws))
    assert sorted(stored) == ["c0", "c1", "c2", "x1"]
    assert stored["x1"]["props"] == {"color": "red"}
    assert segment_paths(folder) == []


def test_a_resent_event_is_stored_once_even_after_midnight(ws: Workspace) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=5, second=0, microsecond=0)
    first = {**_client(1)[0], "ts": (today - timedelta(minutes=10)).isoformat()}
    with EventWAL(ws, MANUAL) as wal:
        assert wal.accept([first]).ok
        assert wal.compact() == 1
        assert wal.accept([{**first, "ts": today.isoformat()}]).ok  # resent without its ts
        assert wal.compact() == 0
    assert all_events(ws).num_rows == 1
