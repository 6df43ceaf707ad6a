"""The append-only event log: Parquet files partitioned by day, each written atomically.

A part file is written to a hidden temporary name, fsynced, then renamed into
``events/day=YYYY-MM-DD/``. Readers only see ``*.parquet`` files, so a process killed
mid-write leaves the log readable; a rerun skips the event ids already present.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from moodboard.data import columns as C

_log = logging.getLogger(__name__)

EVENT_SCHEMA = pa.schema(
    [
        (C.EVENT_ID, pa.string()),
        (C.TS, pa.timestamp("us")),
        (C.USER_ID, pa.string()),
        (C.TYPE, pa.string()),
        (C.ITEM_ID, pa.string()),
        (C.QUERY, pa.string()),
        (C.SURFACE, pa.string()),
        (C.POSITION, pa.int32()),
        (C.REQUEST_ID, pa.string()),
        (C.BOARD_ID, pa.string()),
        (C.ARMS, pa.string()),
        (C.PROPENSITY, pa.float64()),
        (C.PROPS, pa.string()),
    ]
)


def by_day(table: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """The rows of ``table`` per UTC day of ``ts`` (``YYYY-MM-DD``), in time order: one sort
    and one slice per day, whatever the number of days."""
    table = table.sort_by(C.TS)
    days = pc.strftime(table.column(C.TS), format="%Y-%m-%d").to_numpy(zero_copy_only=False)
    names, starts = np.unique(days, return_index=True)
    bounds = [*starts.tolist(), table.num_rows]
    for day, lo, hi in zip(names.tolist(), bounds[:-1], bounds[1:], strict=True):
        yield day, table.slice(lo, hi - lo)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry to disk (after a rename into it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the whole new content."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class EventLog:
    """The workspace's ``events/`` folder.

    Parameters
    ----------
    root
        The ``events`` directory.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def files(self) -> list[Path]:
        """The committed part files, oldest day first."""
        if not self.root.exists():
            return []
        return sorted(self.root.glob("day=*/*.parquet"))

    def day_files(self, day: str) -> list[Path]:
        """The committed part files of one day (``YYYY-MM-DD``)."""
        return sorted((self.root / f"day={day}").glob("*.parquet"))

    def glob(self) -> str:
        """A glob over all committed part files, for DuckDB's ``read_parquet``."""
        return str(self.root / "day=*" / "*.parquet")

    def clean_temporary(self) -> int:
        """Remove temporary files left by a killed writer; returns how many."""
        n = 0
        for tmp in self.root.glob("day=*/.*.tmp"):
            tmp.unlink(missing_ok=True)
            n += 1
        if n:
            _log.info("removed %d unfinished part files", n)
        return n

    def append(self, table: pa.Table, tag: str = "") -> int:
        """Append events (in ``EVENT_SCHEMA``) as one part file per day.

        Returns
        -------
        int
            The number of events written.
        """
        self.append_parts(table, tag)
        return table.num_rows

    def append_parts(self, table: pa.Table, tag: str = "") -> dict[str, Path]:
        """Append events as ``append`` does; returns the part file written per day."""
        if table.num_rows == 0:
            return {}
        table = table.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
        part = f"part-{tag}{uuid.uuid4().hex}.parquet"
        written: dict[str, Path] = {}
        for day, rows in by_day(table):
            folder = self.root / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{part}.tmp"
            with open(tmp, "wb") as fh:
                pq.write_table(rows, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, folder / part)
            fsync_dir(folder)
            written[day] = folder / part
        return written
