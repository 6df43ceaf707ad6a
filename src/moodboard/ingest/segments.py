"""Append-only JSON-lines segment files with group commit, the storage of the event WAL.

A segment is ``<folder>/<number>.jsonl``: one JSON object a line, each line ending in ``\\n``.
Writers append encoded lines to an in-memory buffer and get a ticket; ``sync(ticket)`` returns
once the lines are written and fsynced. One waiting thread at a time becomes the leader: it
takes the whole buffer, writes and fsyncs it while the lock is released, and wakes everyone it
covered, so concurrent callers share one fsync. Only the leader touches the file, so lines
never interleave; after a failed write the next leader starts a fresh segment, so a torn line
can only ever be the last line of a segment.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO

from moodboard.errors import MoodboardError, StorageFullError
from moodboard.ingest.eventlog import fsync_dir

_log = logging.getLogger(__name__)

SUFFIX = ".jsonl"
_MAX_FAILURES = 64
_sync_data = getattr(os, "fdatasync", os.fsync)


class WALWriteError(StorageFullError):
    """Events could not be made durable (disk full, I/O error); nothing was acknowledged.

    The server answers it 507 with ``Retry-After``: the client sends the batch again later.
    """


def lock_folder(folder: Path) -> int:
    """Take a folder for this process (a ``flock`` on ``LOCK``); close the returned fd to free it.

    Raises
    ------
    MoodboardError
        If another process holds it.
    """
    fd = os.open(folder / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise MoodboardError(
            f"The event WAL {folder} is open in another process (pid {holder}): stop that "
            "process, or give this one another workspace."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def segment_paths(folder: Path) -> list[Path]:
    """The segment files in a folder, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"*{SUFFIX}") if p.stem.isdigit())


def parse_lines(data: bytes, source: str, warn: bool) -> list[dict[str, Any]]:
    """The JSON objects of segment bytes; torn or unparsable lines are skipped.

    Parameters
    ----------
    data
        The bytes of a segment (or of buffered lines).
    source
        Where they come from, for the log message.
    warn
        Log skipped lines as warnings (a closed segment) rather than at debug level (a
        segment that may be in the middle of a write).
    """
    out = []
    lines = data.split(b"\n")
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            torn = n == len(lines)  # no newline after it: a write cut short
            level = logging.WARNING if warn else logging.DEBUG
            what = "a torn last line" if torn else "an unreadable line"
            _log.log(level, "%s: skipped %s (line %d, %d bytes)", source, what, n, len(line))
            continue
        out.append(obj)
    return out


def read_segment(path: Path, warn: bool = True) -> list[dict[str, Any]]:
    """The events of one segment file ([] if it was deleted meanwhile)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return parse_lines(data, str(path), warn)


class SegmentWriter:
    """The writing end of a segment folder: buffered appends, shared fsyncs, rotation.

    Parameters
    ----------
    folder
        The segment folder; created by ``start``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._cond = threading.Condition(threading.Lock())
        self._buf: list[bytes] = []
        self._inflight: list[bytes] = []
        self._appended = 0
        self._done = 0
        self._flushing = False
        self._failures: list[tuple[int, int, OSError]] = []
        self._fh: BinaryIO | None = None
        self._path: Path | None = None
        self._size = 0
        self._broken = False

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Open a fresh segment numbered after every existing one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._open_next()

    def close(self) -> None:
        """Flush, close the current segment and delete it when it is empty."""
        with self._cond:
            while self._flushing:
                self._cond.wait()
            if self._buf:
                self._lead(rotate=False)
            if self._fh is not None:
                self._fh.close()
                self._fh = None
                if self._size == 0 and self._path is not None:
                    self._path.unlink(missing_ok=True)
                self._path = None

    @property
    def current(self) -> Path | None:
        """The segment being written."""
        return self._path

    # -- writing ------------------------------------------------------------------------------
    def append(self, lines: list[bytes]) -> int:
        """Buffer encoded lines (each ending in ``\\n``); returns the ticket for ``sync``."""
        with self._cond:
            self._buf.extend(lines)
            self._appended += len(lines)
            return self._appended

    def sync(self, ticket: int | None = None) -> None:
        """Block until the lines up to ``ticket`` (default: all appended) are fsynced.

        Raises
        ------
        WALWriteError
            If writing them failed; they may or may not be on disk.
        """
        with self._cond:
            ticket = self._appended if ticket is None else ticket
            while self._done < ticket:
                if self._flushing:
                    self._cond.wait()
                else:
                    self._lead(rotate=False)
            for lo, hi, err in self._failures:
                if lo < ticket <= hi:
                    raise WALWriteError(
                        f"Could not write the event log ({err.strerror or err}); nothing was "
                        "stored. Send the events again later; the operator frees disk space or "
                        "fixes the permissions of the workspace's events/wal folder."
                    ) from err

    def has_data(self) -> bool:
        """Whether anything is buffered or written to the current segment."""
        with self._cond:
            return bool(self._buf or self._inflight or self._size)

    def buffered(self) -> list[bytes]:
        """A copy of the lines not yet in a file (being written, then waiting)."""
        with self._cond:
            return [*self._inflight, *self._buf]

    def rotate(self) -> list[Path]:
        """Flush, start a new segment if the current one holds data; returns the closed ones.

        The closed segments are every segment but the current one: nobody writes to them
        again, so they can be compacted and deleted.
        """
        with self._cond:
            while self._flushing:
                self._cond.wait()
            return self._lead(rotate=True)

    # -- the leader -----------------------------------------------------------------------------
    def _lead(self, rotate: bool) -> list[Path]:
        """Write and fsync the buffer as the leader; called holding the lock, not flushing."""
        self._flushing = True
        self._inflight, self._buf = self._buf, []
        lo, hi = self._done, self._appended
        data = b"".join(self._inflight)
        closed: list[Path] = []
        self._cond.release()
        err: OSError | None = None
        try:
            try:
                if self._broken:
                    self._open_next()
                if data:
                    self._write(data)
            except OSError as e:
                err = e
                self._broken = True
                _log.error("event log write failed in %s: %s", self.folder, e)
            if rotate and not err and self._size:
                try:
                    self._open_next()
                except OSError as e:
                    self._broken = True
                    _log.error("could not start a new event log segment: %s", e)
            if rotate:
                closed = [p for p in segment_paths(self.folder) if p != self._path]
        finally:
            self._cond.acquire()
            self._inflight = []
            self._flushing = False
            self._done = hi
            if err is not None and hi > lo:
                self._failures = [*self._failures[-_MAX_FAILURES:], (lo, hi, err)]
            self._cond.notify_all()
        return closed

    def _write(self, data: bytes) -> None:
        if self._fh is None:
            raise OSError("the event log is closed")
        self._fh.write(data)
        self._fh.flush()
        _sync_data(self._fh.fileno())
        self._size += len(data)

    def _open_next(self) -> None:
        existing = segment_paths(self.folder)
        number = int(existing[-1].stem) + 1 if existing else 1
        path = self.folder / f"{number:012d}{SUFFIX}"
        fh = open(path, "xb")  # noqa: SIM115 - kept open until the next rotation
        fsync_dir(self.folder)  # the new name survives a crash before its first fsync
        old, self._fh, self._path, self._size, self._broken = self._fh, fh, path, 0, False
        if old is not None:
            try:
                old.close()  # after a failed write, its buffer may fail to flush again
            except OSError as e:
                _log.warning("closing the failed event log segment: %s", e)
        _log.debug("event log segment %s", path.name)
