"""The stored ids a long-lived writer keeps: no copy stored twice, whoever wrote the log."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from moodboard.ingest import EventWAL, WALConfig, Workspace, all_events, ingest_catalog
from moodboard.ingest.eventlog import EVENT_SCHEMA
from moodboard.ingest.events import EventWriter, ingest_events
from moodboard.ingest.seen import SeenIds

ITEMS = [f"p{i}" for i in range(20)]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    w = Workspace(tmp_path / "ws")
    ingest_catalog(w, [pa.table({"id": ITEMS, "title": ITEMS})])
    return w


def _events(ids: range, day0: int = 1, days: int = 1) -> pa.Table:
    """Clicks ``e<i>``, spread over ``days`` days from 2026-03-<day0>."""
    return pa.table(
        {
            "event_id": [f"e{i}" for i in ids],
            "ts": [f"2026-03-{day0 + i % days:02d}T12:{i % 60:02d}:00" for i in ids],
            "user_id": [f"u{i % 5}" for i in ids],
            "type": ["click"] * len(ids),
            "item_id": [ITEMS[i % len(ITEMS)] for i in ids],
        }
    )


def _as_stored(t: pa.Table) -> pa.Table:
    """The events as the log stores them (``EVENT_SCHEMA``)."""
    n = t.num_rows
    cols = {c: t.column(c) for c in t.column_names} | {
        "ts": pc.strptime(t["ts"], "%Y-%m-%dT%H:%M:%S", "us")
    }
    return pa.table(
        [
            cols[f.name].cast(f.type) if f.name in cols else pa.nulls(n, f.type)
            for f in EVENT_SCHEMA
        ],
        schema=EVENT_SCHEMA,
    )


def _stored(ws: Workspace) -> list[str]:
    return sorted(all_events(ws).column("event_id").to_pylist())


def test_resent_events_are_stored_once_while_few_days_are_kept(ws: Workspace) -> None:
    seen = SeenIds(ws.events, max_days=2)
    first = ingest_events(ws, [_events(range(0, 60), days=6), _events(range(60, 120), days=6)])
    assert first.new == 120
    with ws.connect() as con:
        writer = EventWriter(ws, con, seen)
        for lo in (100, 0, 40, 80):  # every day again, out of order, past the two kept
            assert writer.write(_as_stored(_events(range(lo, lo + 20), days=6))) == 0
            assert len(seen.days) <= 6 * 2  # the batch's days and the day before each
        assert writer.write(_as_stored(_events(range(0, 18, 6)))) == 0  # one day: the rest go
        assert seen.days == ["2026-02-28", "2026-03-01"]
    assert _stored(ws) == sorted(f"e{i}" for i in range(120))
    seen.close()


def test_a_kept_writer_sees_files_another_writer_added(ws: Workspace) -> None:
    with EventWAL(ws, WALConfig(background=False)) as wal:
        assert wal.accept(_events(range(0, 10)).to_pylist()).ok
        assert wal.compact() == 10  # the WAL now holds this day's ids
        assert ingest_events(ws, [_events(range(10, 20))]).new == 10  # `moodboard ingest`
        assert wal.accept(_events(range(5, 20)).to_pylist()).ok  # a client resends them all
        assert wal.compact() == 0
    assert _stored(ws) == sorted(f"e{i}" for i in range(20))


def test_a_day_whose_file_went_away_is_read_again(ws: Workspace) -> None:
    with EventWAL(ws, WALConfig(background=False)) as wal:
        assert wal.accept(_events(range(0, 10)).to_pylist()).ok
        assert wal.compact() == 10
        (part,) = ws.events.day_files("2026-03-01")
        part.unlink()  # the log rewritten by hand: those events are gone
        assert wal.accept(_events(range(0, 10)).to_pylist()).ok
        assert wal.compact() == 10  # so their copies are stored, not dropped as seen
    assert _stored(ws) == sorted(f"e{i}" for i in range(10))


def test_a_day_is_sql_checked_and_max_days_is_positive(ws: Workspace) -> None:
    seen = SeenIds(ws.events)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        seen.load(["2026-03-01; DROP TABLE x"])
    with pytest.raises(ValueError, match="max_days"):
        SeenIds(ws.events, max_days=0)
    seen.close()
