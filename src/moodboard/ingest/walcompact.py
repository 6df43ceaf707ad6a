"""Compaction of the event WAL: closed segments into the Parquet log, poison segments aside.

Closed segments are stored together through ``EventWriter`` (which deduplicates by
``event_id``, so storing a segment twice adds nothing twice), then deleted. A failure that may
pass (the database locked by another process, a full disk) leaves every segment in place for
the next try. Any other failure is the data's: the segments are then stored one by one, and a
segment that still fails is moved to ``<workspace>/quarantine/wal-<name>.jsonl`` with a
sidecar ``wal-<name>.error.json`` giving its error, so it never blocks the others, nor the
server's start or stop. Nothing is deleted that was not stored or set aside.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from moodboard.config import IngestSettings
from moodboard.ingest.eventlog import fsync_dir
from moodboard.ingest.events import EventWriter, check_events, stored_columns
from moodboard.ingest.prepare import quarantine_checked
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.seen import SeenIds
from moodboard.ingest.walfast import byte_groups, plain_events
from moodboard.ingest.walread import segment_batches
from moodboard.ingest.workspace import Workspace

_log = logging.getLogger(__name__)
_DB_LOCKS: dict[Path, threading.Lock] = {}
_DB_LOCKS_GUARD = threading.Lock()

#: Failures that may pass by themselves: retried, and the segments stay for the next try.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    duckdb.IOException,
    duckdb.TransactionException,
    duckdb.ConnectionException,
)


def workspace_write_lock(ws: Workspace) -> threading.Lock:
    """The lock this process takes around writes to a workspace's database."""
    key = ws.db_path.resolve()
    with _DB_LOCKS_GUARD:
        return _DB_LOCKS.setdefault(key, threading.Lock())


def _retrying(step: Callable[[], int], retries: int) -> int:
    delay = 0.05
    for attempt in range(retries + 1):
        try:
            return step()
        except TRANSIENT as e:
            if attempt == retries:
                raise
            _log.warning("compaction failed (%s); retrying in %.2fs", e, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def store_segments(
    ws: Workspace,
    paths: list[Path],
    lock: threading.Lock,
    chunk_rows: int,
    limits: IngestSettings | None = None,
    seen: SeenIds | None = None,
) -> int:
    """Store segments' events in the Parquet log (checked, deduplicated); returns how many
    were new. Plain segments take the fast path (``walfast``); in the others, rows failing a
    check go to the quarantine with their reasons.

    Parameters
    ----------
    lock
        The process's write lock of the workspace database (a context manager).
    seen
        The ids already stored, kept by the caller between compactions (default: read anew).
    """
    name = f"events/wal/{paths[0].name}" + (f"..{paths[-1].name}" if len(paths) > 1 else "")
    q = Quarantine(ws.quarantine_dir, "events", name)
    new = 0
    with lock, ws.connect() as con:
        con.execute("SET threads = 1")  # leave the other cores to the requests being served
        writer = EventWriter(ws, con, seen)
        try:
            for group in byte_groups(paths):
                rows, why = plain_events(con, group, limits)
                if rows is not None:
                    new += writer.write(stored_columns(rows))
                    continue
                _log.debug("%s: stored row by row: %s", name, why)
                for batch in segment_batches(group, chunk_rows):
                    rows, good = check_events(con, batch, name, limits=limits)
                    quarantine_checked(q, batch, rows)
                    new += writer.write(good)
        finally:
            writer.close()
            q.close()
    if q.count:
        _log.warning("%s: %d events failed the checks, see %s", name, q.count, q.path)
    return new


def quarantine_segment(ws: Workspace, path: Path, error: BaseException) -> Path:
    """Move a segment that cannot be stored to the quarantine folder, with its error beside.

    Returns
    -------
    Path
        Where the segment now is.
    """
    folder = ws.quarantine_dir
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = folder / f"wal-{path.stem}-{stamp}.jsonl"
    sidecar = dest.with_suffix(".error.json")
    info = {
        "segment": str(path),
        "moved_to": str(dest),
        "error": f"{type(error).__name__}: {error}",
        "at": datetime.now(UTC).isoformat(),
        "what_to_do": "fix the lines the error names, then `moodboard ingest events` this file",
    }
    sidecar.write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(path, dest)
    fsync_dir(folder)
    fsync_dir(path.parent)
    _log.error("event WAL segment %s cannot be stored (%s): moved to %s", path, error, dest)
    return dest


def compact_closed(
    ws: Workspace,
    closed: list[Path],
    lock: threading.Lock,
    chunk_rows: int,
    limits: IngestSettings | None = None,
    retries: int = 0,
    seen: SeenIds | None = None,
) -> int:
    """Store closed segments and delete them; set aside the ones that cannot be stored.

    Returns
    -------
    int
        How many events were new to the log.

    Raises
    ------
    OSError, duckdb.Error
        A failure that may pass (see ``TRANSIENT``) after ``retries`` retries; the segments
        not stored yet stay in the WAL.
    """
    if not closed:
        return 0
    try:
        new = _retrying(lambda: store_segments(ws, closed, lock, chunk_rows, limits, seen), retries)
        done = closed
    except TRANSIENT:
        raise
    except Exception as e:  # the data's fault: find the segment that holds it
        _log.warning("storing %d WAL segments failed (%s); storing them one by one", len(closed), e)
        new, done = 0, []
        try:
            for p in closed:
                try:
                    new += _retrying(
                        lambda p=p: store_segments(ws, [p], lock, chunk_rows, limits, seen),
                        retries,
                    )
                    done.append(p)
                except TRANSIENT:
                    raise
                except Exception as err:
                    quarantine_segment(ws, p, err)
        finally:
            _delete(done)
        return new
    _delete(done)
    return new


def _delete(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
    if paths:
        fsync_dir(paths[0].parent)
