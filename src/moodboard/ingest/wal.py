"""The write-ahead log of events posted to the HTTP API, in ``<workspace>/events/wal/``.

``accept`` checks a batch with the named checks of file ingestion, all or nothing, and returns
once the batch is fsynced to the current segment (concurrent callers share fsyncs).
``log`` takes server-generated events (impressions) after cheap checks in Python; a background
flusher fsyncs them within ``flush_interval_ms``. ``compact`` moves the closed segments into
the Parquet event log through ``EventWriter``, which deduplicates by ``event_id`` (so a segment
stored twice after a crash adds nothing twice), then deletes them; a background thread runs it
every ``compact_interval_s``. A process killed at any moment loses no event whose ``accept``
returned: the next ``open`` stores whatever the last one left. A segment that cannot be stored
is set aside in ``quarantine/`` with its error (``walcompact``); ``open`` and ``close`` never
fail because of compaction.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import IngestSettings, WALConfig
from moodboard.data import columns as C
from moodboard.errors import InputError, ServerBusyError
from moodboard.ingest.events import check_events
from moodboard.ingest.prepare import keep_keys, quarantine_checked
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.readers import ROW, Batch, records_batch
from moodboard.ingest.seen import SeenIds
from moodboard.ingest.segments import (
    SegmentWriter,
    lock_folder,
    parse_lines,
    read_segment,
    segment_paths,
)
from moodboard.ingest.walcompact import compact_closed, workspace_write_lock
from moodboard.ingest.walread import all_events, events_of, load_known_items
from moodboard.ingest.walrows import (
    AcceptReport,
    encode,
    fast_reasons,
    first_copies,
    incoming,
    normalized,
    split_reasons,
)
from moodboard.ingest.workspace import Workspace, connect_memory

_log = logging.getLogger(__name__)

API_SOURCE = "<api>"
_EVENT_KEYS = keep_keys("events")
__all__ = ["API_SOURCE", "EventWAL", "workspace_write_lock"]


class EventWAL:
    """A durable write-ahead log for events arriving through the API.

    Parameters
    ----------
    ws
        The workspace; its ``events/wal/`` folder holds the segments.
    config
        Flush and compaction settings (default ``WALConfig()``).
    limits
        The bounds events must keep (timestamps, field counts and sizes) and the rotation of
        the API's quarantine file (default ``IngestSettings()``).

    Examples
    --------
    >>> with EventWAL(ws) as wal:                                    # doctest: +SKIP
    ...     report = wal.accept([{"user_id": "u1", "type": "click", "item_id": "p1"}])
    """

    def __init__(
        self, ws: Workspace, config: WALConfig | None = None, limits: IngestSettings | None = None
    ) -> None:
        self.ws = ws
        self.config = config if config is not None else WALConfig()
        self.limits = limits if limits is not None else IngestSettings()
        self._seg: SegmentWriter | None = None
        self._mem: duckdb.DuckDBPyConnection | None = None
        self._seen: SeenIds | None = None  # the log's stored ids, kept between compactions
        self._lock_fd: int | None = None
        self._catalog_at = float("-inf")
        self._catalog_lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._q_lock = threading.Lock()
        self._quarantine: Quarantine | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def folder(self) -> Path:
        """The segment folder."""
        return self.ws.root / "events" / "wal"

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> EventWAL:
        """Take the folder, store what a previous process left, start the background threads.

        A failure to store what was left is logged, never raised: the segments stay in the
        WAL for the compactor (a segment that cannot be stored is moved to the quarantine).

        Raises
        ------
        MoodboardError
            If another process has this workspace's WAL open.
        """
        if self._seg is not None:
            return self
        if not self.ws.exists():
            self.ws.init()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_folder(self.folder)
        try:
            self._mem, self._seen = connect_memory(), SeenIds(self.ws.events, self.config.seen_days)
            self._refresh_catalog(force=True)
            self._seg = SegmentWriter(self.folder)
            self._seg.start()
            left = len(segment_paths(self.folder)) - 1
            if left:
                _log.info("event WAL: storing %d segments left by a previous process", left)
                self._compact_logged(retries=5)
        except BaseException:
            self._release()
            raise
        self._stop.clear()
        if self.config.background:
            self._threads = [
                threading.Thread(target=self._flush_loop, name="wal-flush", daemon=True),
                threading.Thread(target=self._compact_loop, name="wal-compact", daemon=True),
            ]
            for t in self._threads:
                t.start()
        return self

    def close(self) -> None:
        """Stop the threads, store every event in the Parquet log and release the folder.

        A failure to store them is logged, never raised: the events stay in the WAL for the
        next ``open``.
        """
        if self._seg is None:
            return
        self._stop.set()
        for t in self._threads:
            t.join()
        self._threads = []
        try:
            self._compact_logged(retries=5)
        finally:
            self._release()

    def __enter__(self) -> EventWAL:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------------
    def accept(self, rows: Sequence[Any]) -> AcceptReport:
        """Check a batch like an event file and store all of it durably, or none of it.

        Missing (absent, null or blank) ``event_id`` get a fresh uuid4 hex and missing ``ts``
        the current UTC time before the checks. Failing rows are quarantined with their
        reasons; when every row passes, the batch is fsynced before this returns. An
        ``event_id`` repeated in the batch is stored (and counted) once, its first copy.

        Raises
        ------
        MoodboardError
            If the WAL is not open.
        InputError
            If the batch holds more distinct extra field names than
            ``ingest.max_extra_keys_per_batch`` (nothing is stored).
        WALWriteError
            If the batch could not be written to disk (nothing was acknowledged).
        """
        seg = self._require_open()
        records, bad = incoming(rows, self.limits.max_extra_keys_per_batch)
        batch = records_batch(records, bad, _EVENT_KEYS, drop_private=False)
        checked = self._check(batch)
        failing = checked.filter(pc.not_equal(checked.column("_reason"), ""))
        reasons = failing.column("_reason").to_pylist()
        if any("item_in_catalog: " in r for r in reasons) and self._refresh_catalog():
            checked = self._check(batch)
            failing = checked.filter(pc.not_equal(checked.column("_reason"), ""))
            reasons = failing.column("_reason").to_pylist()
        errors = [
            {"row": r, "reasons": split_reasons(reason)}
            for r, reason in zip(failing.column(ROW).to_pylist(), reasons, strict=True)
        ] + [{"row": b.row, "reasons": [f"parses: {b.reason}"]} for b in bad]
        if errors:
            return AcceptReport(
                0, (), sorted(errors, key=lambda e: e["row"]), self._quarantine_rows(batch, checked)
            )
        first, repeated = first_copies(rec for _, rec in records)
        if first:
            seg.sync(seg.append([encode(rec) for rec in first.values()]))
        return AcceptReport(len(first), tuple(first), duplicates=tuple(repeated))

    def log(self, rows: Sequence[Mapping[str, Any]], durable: bool = False) -> list[str]:
        """Buffer server-generated events; the flusher fsyncs them within the flush interval.

        The checks run in Python (every named check but ``item_in_catalog``, which runs when
        the events are compacted: an unknown item is quarantined then).

        Parameters
        ----------
        durable
            Wait for the fsync, like ``accept``.

        Returns
        -------
        list of str
            The events' ids (generated where missing).

        Raises
        ------
        InputError
            If an event fails a check: the server generated a bad event, nothing is logged.
        WALWriteError
            If ``durable`` and the events could not be written to disk.
        """
        seg = self._require_open()
        now = datetime.now(UTC).isoformat()
        lines, ids, problems = [], [], []
        for i, row in enumerate(rows):
            rec = normalized(row, now)
            why = fast_reasons(rec)
            if why:
                problems.append(f"row {i}: {' | '.join(why)}")
                continue
            ids.append(str(rec[C.EVENT_ID]))
            lines.append(encode(rec))
        if problems:
            raise InputError(
                f"{len(problems)} of {len(rows)} logged events fail the checks and none was "
                f"logged; fix the code that builds them: {'; '.join(problems[:5])}"
            )
        if lines:
            ticket = seg.append(lines)
            if durable:
                seg.sync(ticket)
        return ids

    def flush(self) -> None:
        """Write and fsync every event logged so far (what the background flusher does).

        Raises
        ------
        MoodboardError
            If the WAL is not open.
        WALWriteError
            If the events could not be written to disk.
        """
        self._require_open().sync()

    # -- compaction -----------------------------------------------------------------------------
    def compact(self) -> int:
        """Move every closed segment into the Parquet event log, then delete them.

        Returns
        -------
        int
            How many events were new to the log.

        A segment that cannot be stored for a reason of its own is moved to the quarantine
        folder with its error (see ``walcompact``), and the others are stored.

        Raises
        ------
        MoodboardError
            If the WAL is not open.
        OSError, duckdb.Error
            If the database cannot be written now; the segments stay for the next try.
        """
        self._require_open()
        return self._compact(retries=0)

    def _compact(self, retries: int) -> int:
        assert self._seg is not None
        with self._compact_lock:
            closed = self._seg.rotate()
            lock, rows = workspace_write_lock(self.ws), self.config.chunk_rows
            new = compact_closed(self.ws, closed, lock, rows, self.limits, retries, self._seen)
            if closed:
                _log.debug("compacted %d segments: %d new events", len(closed), new)
            return new

    def _compact_logged(self, retries: int) -> None:
        try:
            self._compact(retries)
        except Exception:
            _log.exception("event WAL compaction failed; the events stay in the WAL")

    # -- reading --------------------------------------------------------------------------------
    def pending_events(self) -> pa.Table:
        """The events in the WAL that are not in the Parquet log yet, in ``EVENT_SCHEMA``.

        Raises
        ------
        MoodboardError
            If the WAL is not open.
        """
        seg = self._require_open()
        records = parse_lines(b"".join(seg.buffered()), "buffer", warn=False)
        for p in segment_paths(self.folder):
            records += read_segment(p, warn=False)
        assert self._mem is not None
        with self._mem.cursor() as cur:
            return events_of(records, cur, self.limits)

    def read_all(self) -> pa.Table:
        """Every event: the Parquet log plus the WAL (read from disk when this one is closed)."""
        return all_events(self.ws, self if self._seg is not None else None)

    # -- helpers --------------------------------------------------------------------------------
    def _require_open(self) -> SegmentWriter:
        if self._seg is None:
            raise ServerBusyError("The event WAL is not open: call open() (or use it in a with).")
        return self._seg

    def _check(self, batch: Batch) -> pa.Table:
        assert self._mem is not None
        with self._mem.cursor() as cur:
            return check_events(cur, batch, API_SOURCE, limits=self.limits)[0]

    def _refresh_catalog(self, force: bool = False) -> bool:
        with self._catalog_lock:
            if not force and time.monotonic() - self._catalog_at < self.config.catalog_refresh_s:
                return False
            assert self._mem is not None
            load_known_items(self.ws, self._mem)
            self._catalog_at = time.monotonic()
            return True

    def _quarantine_rows(self, batch: Batch, checked: pa.Table) -> str | None:
        with self._q_lock:
            if self._quarantine is None:
                self._quarantine = Quarantine(
                    self.ws.quarantine_dir,
                    "events",
                    API_SOURCE,
                    name="events-api",
                    max_bytes=int(self.limits.api_quarantine_max_mb * 2**20),
                    keep=self.limits.api_quarantine_files,
                )
            quarantine_checked(self._quarantine, batch, checked)
            return str(self._quarantine.path) if self._quarantine.path else None

    def _release(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None
        with self._q_lock:
            if self._quarantine is not None:
                self._quarantine.close()
                self._quarantine = None
        for held in (self._mem, self._seen):
            if held is not None:
                held.close()
        self._mem = self._seen = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _flush_loop(self) -> None:
        interval = self.config.flush_interval_ms / 1000
        while not self._stop.wait(interval):
            seg = self._seg
            try:
                if seg is not None:
                    seg.sync()
            except Exception:
                _log.exception("event WAL flush failed")

    def _compact_loop(self) -> None:
        while not self._stop.wait(self.config.compact_interval_s):
            seg = self._seg
            if seg is None or not (seg.has_data() or len(segment_paths(self.folder)) > 1):
                continue
            self._compact_logged(retries=0)
