"""Connections to a workspace's DuckDB file that wait, briefly, for whoever else holds it.

DuckDB locks the file two ways. Between processes, a read-write connection excludes every
other process, while read-only connections share the file with each other: a server that
reads read-only keeps reading while a ``moodboard status`` runs, and a write waits. Inside
one process, every connection to the file must have the same mode. ``connect_db`` handles both:

* between threads of this process, a reader shares this process's read-write connection when
  one is open; a writer waits for this process's read-only connections to close, and readers
  that arrive meanwhile wait for the writer (so a stream of reads never starves a write);
* a lock held by another process is retried with exponential backoff up to ``wait_s``, then
  ``ServerBusyError`` (HTTP 503 with ``Retry-After``) says so.

A write that fails because the disk is full raises ``StorageFullError`` (HTTP 507).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from moodboard.errors import ServerBusyError, StorageFullError

_log = logging.getLogger(__name__)

#: Substrings of DuckDB's messages when the file is held elsewhere (another process's lock, or
#: a connection of this process in the other mode).
_HELD = ("Could not set lock on file", "Conflicting lock", "different configuration")
#: Substrings of DuckDB's messages when a write hits a full disk or quota.
_FULL = ("No space left on device", "Disk quota exceeded")
_FIRST_DELAY_S = 0.01
_MAX_DELAY_S = 0.2


@dataclass
class _FileUse:
    """This process's connections to one database file, by mode."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    readers: int = 0
    writers: int = 0
    waiting_writers: int = 0


_USES: dict[Path, _FileUse] = {}
_USES_GUARD = threading.Lock()


def _use_of(path: Path) -> _FileUse:
    key = path.resolve()
    with _USES_GUARD:
        return _USES.setdefault(key, _FileUse())


def _busy(path: Path, wait_s: float) -> ServerBusyError:
    return ServerBusyError(
        f"The workspace database ({path.name}) is held by another process (a `moodboard "
        f"ingest`, `build` or `status` run): it was still held after {wait_s:g} s. Retry in a "
        "moment."
    )


def _reserve(use: _FileUse, read_only: bool, deadline: float, path: Path, wait_s: float) -> bool:
    """Count this connection in; returns whether it opens read-write."""
    with use.cond:
        if read_only:
            use.cond.wait_for(
                lambda: use.writers > 0 or use.waiting_writers == 0,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            write = use.writers > 0  # share this process's read-write connection
        else:
            use.waiting_writers += 1
            try:
                ok = use.cond.wait_for(
                    lambda: use.readers == 0, timeout=max(0.0, deadline - time.monotonic())
                )
            finally:
                use.waiting_writers -= 1
                use.cond.notify_all()
            if not ok:
                raise _busy(path, wait_s)
            write = True
        if write:
            use.writers += 1
        else:
            use.readers += 1
        return write


def _release(use: _FileUse, write: bool) -> None:
    with use.cond:
        if write:
            use.writers -= 1
        else:
            use.readers -= 1
        use.cond.notify_all()


def _open(path: Path, read_only: bool, deadline: float, wait_s: float) -> duckdb.DuckDBPyConnection:
    delay = _FIRST_DELAY_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as e:
            if not any(s in str(e) for s in _HELD):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                _log.warning("%s stays held: %s", path, e)
                raise _busy(path, wait_s) from e
            time.sleep(min(delay, left))
            delay = min(2 * delay, _MAX_DELAY_S)


@contextmanager
def connect_db(
    path: Path, read_only: bool = False, wait_s: float = 1.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to a DuckDB file, in UTC, closed on exit.

    Parameters
    ----------
    path
        The database file.
    read_only
        Only read (shares the file with other processes that only read).
    wait_s
        How long to wait for the file when another process (or, for a write, a reader of
        this process) holds it.

    Raises
    ------
    ServerBusyError
        If the file is still held after ``wait_s``.
    StorageFullError
        If a statement fails because the disk is full.
    """
    path = Path(path)
    use = _use_of(path)
    deadline = time.monotonic() + wait_s
    write = _reserve(use, read_only, deadline, path, wait_s)
    try:
        con = _open(path, not write, deadline, wait_s)
    except BaseException:
        _release(use, write)
        raise
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    except duckdb.IOException as e:
        if any(s in str(e) for s in _FULL):
            raise StorageFullError(
                "The workspace database could not be written: the disk is full. Nothing was "
                "stored; retry later (the operator frees disk space)."
            ) from e
        raise
    finally:
        try:
            con.close()
        finally:
            _release(use, write)
