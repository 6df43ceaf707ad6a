"""Reading the event WAL: its pending events, and every event (the log plus the WAL)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import IngestSettings
from moodboard.data import columns as C
from moodboard.ingest.eventlog import EVENT_SCHEMA
from moodboard.ingest.events import check_events
from moodboard.ingest.prepare import keep_keys
from moodboard.ingest.readers import Batch, records_batch
from moodboard.ingest.segments import read_segment, segment_paths
from moodboard.ingest.workspace import Workspace, connect_memory

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from moodboard.ingest.wal import EventWAL

_log = logging.getLogger(__name__)
_KEYS = keep_keys("events")


def events_of(
    records: list[dict[str, Any]],
    con: duckdb.DuckDBPyConnection,
    limits: IngestSettings | None = None,
) -> pa.Table:
    """WAL records as ``EVENT_SCHEMA`` rows: first copy per event_id, passing the checks."""
    seen: set[str] = set()
    rows = []
    for rec in records:
        eid = str(rec.get(C.EVENT_ID))
        if eid not in seen:
            seen.add(eid)
            rows.append((len(rows) + 1, rec))
    if not rows:
        return EVENT_SCHEMA.empty_table()
    return check_events(con, records_batch(rows, keep=_KEYS), "events/wal", limits=limits)[1]


def segment_batches(paths: list[Path], chunk_rows: int) -> Iterator[Batch]:
    """The events of closed segments, in batches of string columns numbered from 1."""
    rows: list[tuple[int, dict[str, Any]]] = []
    n = 0
    for path in paths:
        for rec in read_segment(path, warn=True):
            n += 1
            rows.append((n, rec))
            if len(rows) >= chunk_rows:
                yield records_batch(rows, keep=_KEYS)
                rows = []
    if rows:
        yield records_batch(rows, keep=_KEYS)


def pending_on_disk(ws: Workspace) -> pa.Table:
    """The events in a workspace's WAL segments, read from disk (no open ``EventWAL``).

    Events are not checked against the catalog here (that happens when they are compacted).
    A segment that cannot be read (one the next compaction will set aside) is skipped with a
    warning.
    """
    con = connect_memory()
    parts = []
    try:
        for p in segment_paths(ws.root / "events" / "wal"):
            try:
                records = read_segment(p, warn=False)
                items = {str(r[C.ITEM_ID]) for r in records if r.get(C.ITEM_ID) is not None}
                con.register("_ids", pa.table({"id": pa.array(sorted(items), pa.string())}))
                con.execute("CREATE OR REPLACE TABLE _known_items AS SELECT id FROM _ids")
                con.unregister("_ids")
                parts.append(events_of(records, con))
            except Exception as e:  # a poisoned segment must not stop status or reads
                _log.warning("skipped the WAL segment %s, which cannot be read: %s", p, e)
    finally:
        con.close()
    if not parts:
        return EVENT_SCHEMA.empty_table()
    t = pa.concat_tables(parts)
    seen: set[Any] = set()
    first = []
    for eid in t.column(C.EVENT_ID).to_pylist():
        first.append(eid not in seen)
        seen.add(eid)
    return t.filter(pa.array(first, pa.bool_()))


def pending_count(ws: Workspace) -> int:
    """How many events sit in the WAL segments on disk and not yet in the Parquet log (the
    events a running server accepted since its last compaction)."""
    pending = pending_on_disk(ws)
    if pending.num_rows == 0:
        return 0
    ids = pa.table({"event_id": pending.column(C.EVENT_ID)})
    files = ws.events.files()
    if not files:
        return len(set(ids.column(0).to_pylist()))
    con = connect_memory()
    try:
        con.register("_pending", ids)
        return int(
            con.execute(
                "SELECT count(DISTINCT event_id) FROM _pending WHERE event_id NOT IN "
                "(SELECT event_id FROM read_parquet(?, hive_partitioning = false))",
                [[str(f) for f in files]],
            ).fetchone()[0]
        )
    finally:
        con.close()


def all_events(ws: Workspace, wal: EventWAL | None = None) -> pa.Table:
    """Every event: the Parquet log plus the WAL's pending events, each once, by time.

    Parameters
    ----------
    wal
        The open WAL of this process, whose buffered events are included; without it the
        segments on disk are read.
    """
    pending = wal.pending_events() if wal is not None else pending_on_disk(ws)  # WAL first
    files = ws.events.files()
    if files:
        con = connect_memory()
        try:
            stored = con.execute(
                f"SELECT {', '.join(EVENT_SCHEMA.names)} FROM read_parquet(?, "
                "hive_partitioning = false)",
                [[str(f) for f in files]],
            ).to_arrow_table()
        finally:
            con.close()
        stored = stored.cast(EVENT_SCHEMA)
    else:
        stored = EVENT_SCHEMA.empty_table()
    fresh = pending.filter(pc.invert(pc.is_in(pending.column(C.EVENT_ID), stored[C.EVENT_ID])))
    return pa.concat_tables([stored, fresh]).sort_by(C.TS)


def load_known_items(ws: Workspace, mem: duckdb.DuckDBPyConnection) -> None:
    """Copy the workspace's product ids into ``mem``'s ``_known_items`` table (what the
    events' item check reads)."""
    with ws.connect(read_only=True) as con:
        ids = con.execute(f"SELECT {C.ID} AS id FROM products").to_arrow_table()
    with mem.cursor() as cur:
        cur.register("_ids", ids)
        cur.execute("CREATE OR REPLACE TABLE _known_items AS SELECT id FROM _ids")
        cur.unregister("_ids")
