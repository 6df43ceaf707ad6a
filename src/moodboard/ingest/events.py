"""Event ingestion: check event batches, deduplicate them by ``event_id`` and store them.

Every event keeps its extra fields verbatim in its own ``props`` (one JSON text per row, see
``fields``), so the Parquet log has one schema, ``EVENT_SCHEMA``, whatever the clients send.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import IngestSettings
from moodboard.data import columns as C
from moodboard.ingest.eventlog import EVENT_SCHEMA
from moodboard.ingest.prepare import (
    IngestReport,
    Progress,
    checked,
    prepare,
    quarantine_checked,
    source_batches,
)
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.readers import Batch
from moodboard.ingest.seen import SeenIds
from moodboard.ingest.workspace import Workspace

_log = logging.getLogger(__name__)


def check_events(
    con: duckdb.DuckDBPyConnection,
    batch: Batch,
    source: str = "<memory>",
    mapping: Mapping[str, str] | None = None,
    limits: IngestSettings | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Run the named event checks over a batch; ``con`` must hold a ``_known_items`` table.

    Returns every row with its ``_reason`` ('' when it passes), then the passing rows in
    ``EVENT_SCHEMA``.

    Raises
    ------
    InputError
        If the batch lacks a required column.
    """
    table = prepare(batch, "events", mapping or {}, source, limits)
    rows = checked(con, table, "events", limits)
    return rows, stored_columns(rows.filter(pc.equal(rows.column("_reason"), "")))


def stored_columns(rows: pa.Table) -> pa.Table:
    """Checked rows that passed, as the log stores them (``EVENT_SCHEMA``)."""
    return rows.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


class EventWriter:
    """Stores checked event batches: dedup by event_id, users, board items, then the log.

    An event is stored in the day folder of its ``ts``, so its copies are looked for in the
    days a batch's events fall on and the day before each (an event resent without its own
    ``ts`` gets a later one: the day before covers a resend across midnight). Those days' ids
    are held by ``seen``, which reads each part file once, so the cost follows the batch, not
    the whole log.

    Parameters
    ----------
    ws
        The workspace.
    con
        An open connection to the workspace database, held for the whole ingestion.
    seen
        The ids already stored; a long-lived writer passes its own so they are kept between
        ingestions (default: a new one, which ``close`` releases).
    """

    def __init__(
        self, ws: Workspace, con: duckdb.DuckDBPyConnection, seen: SeenIds | None = None
    ) -> None:
        self.ws = ws
        self.con = con
        self._owns_seen = seen is None
        self.seen = seen if seen is not None else SeenIds(ws.events)
        con.execute("CREATE OR REPLACE TEMP TABLE _known_items AS SELECT id FROM products")

    def write(self, events: pa.Table) -> int:
        """Store events in ``EVENT_SCHEMA``; returns how many were new."""
        con = self.con
        ts = pc.unique(pc.cast(events.column(C.TS), pa.date32()))
        self.seen.load(d.isoformat() for t in ts.to_pylist() for d in (t, t - timedelta(days=1)))
        con.register("_valid", events)
        try:
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO users SELECT user_id, min(ts) FROM _valid GROUP BY user_id "
                "ON CONFLICT (id) DO UPDATE SET first_seen = least(first_seen, excluded.first_seen)"
            )
            con.execute(
                "INSERT INTO boards SELECT board_id, arg_min(user_id, ts), NULL, min(ts) "
                "FROM _valid WHERE type = 'save' AND board_id IS NOT NULL GROUP BY board_id "
                "ON CONFLICT (id) DO NOTHING"
            )
            con.execute(
                "INSERT OR IGNORE INTO board_items SELECT board_id, item_id, min(ts) FROM _valid "
                "WHERE type = 'save' AND board_id IS NOT NULL GROUP BY ALL"
            )
            con.execute("COMMIT")
        finally:
            con.unregister("_valid")
        fresh = self.seen.fresh(events)
        self.seen.add(fresh, self.ws.events.append_parts(fresh))
        return fresh.num_rows

    def close(self) -> None:
        """Release the ids held, unless they were passed in."""
        if self._owns_seen:
            self.seen.close()


def ingest_events(
    ws: Workspace,
    source: Path | str | Iterable[pa.Table],
    mapping: Mapping[str, str] | None = None,
    *,
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    progress: Progress | None = None,
    limits: IngestSettings | None = None,
) -> IngestReport:
    """Ingest events from a file, or from tables of string columns (the simulator's path).

    Parameters
    ----------
    limits
        The bounds the events must keep (timestamps, field counts and sizes); default
        ``IngestSettings()``.

    Raises
    ------
    InputError
        If the file cannot be read or lacks a required column.
    """
    name, batches = source_batches(source, "events", mapping, chunk_rows, encoding)
    ws.init()
    q = Quarantine(ws.quarantine_dir, "events", name)
    read = stored = new = 0
    with ws.connect() as con:
        writer = EventWriter(ws, con)
        try:
            for batch in batches:
                rows, good = check_events(con, batch, name, mapping, limits)
                quarantine_checked(q, batch, rows)
                new += writer.write(good)
                read += batch.read
                stored += good.num_rows
                if progress:
                    progress(batch.read)
        finally:
            writer.close()
            q.close()
    report = IngestReport(read, stored, q.count, str(q.path) if q.path else None, new)
    _log.info("events %s: %s (%d new)", name, report.summary(), new)
    return report
