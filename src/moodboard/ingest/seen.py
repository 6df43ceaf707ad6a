"""The event ids already stored in the Parquet log, kept per day between writes.

Deduplicating a batch by ``event_id`` needs the ids of the days the batch falls on. Part files
never change once committed, so ``SeenIds`` reads each file's ids once and then adds the ids
it writes itself: a long-lived writer (the event WAL's compactor) pays for the events it
stores, not for the whole day's log on every compaction. A file that disappears (a log
rewritten by hand) makes its day load again from disk. Days are kept least recently used
first: at most ``max_days`` of them besides the current batch's own, so memory stays bounded
on a long backfill.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa

from moodboard.data import columns as C
from moodboard.ingest.eventlog import EventLog, by_day
from moodboard.ingest.workspace import connect_memory

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class SeenIds:
    """The stored event ids of recently written days, a table per day in in-memory DuckDB.

    Parameters
    ----------
    log
        The workspace's event log.
    max_days
        The most days kept besides the current batch's; the least recently used day is
        dropped (and read again from its files when a batch falls on it).

    Examples
    --------
    >>> seen = SeenIds(ws.events)                                     # doctest: +SKIP
    >>> seen.load(["2026-12-06"])
    >>> new = seen.fresh(events)            # first copy of each id not in the log yet
    >>> seen.add(new, ws.events.append_parts(new))
    """

    def __init__(self, log: EventLog, max_days: int = 8) -> None:
        if max_days < 1:
            raise ValueError(f"max_days must be >= 1, got {max_days}")
        self.log = log
        self.max_days = max_days
        self._files: OrderedDict[str, set[str]] = OrderedDict()
        self._con = connect_memory()
        self._con.execute("SET threads = 1")  # the log's writer shares the machine with serving

    @property
    def days(self) -> list[str]:
        """The days held, least recently used first."""
        return list(self._files)

    def load(self, days: Iterable[str]) -> None:
        """Hold every stored id of ``days`` (``YYYY-MM-DD``): read the files not read yet."""
        wanted = sorted(set(days))
        for day in wanted:
            files = {p.name: p for p in self.log.day_files(day)}
            known = self._files.get(day)
            if known is not None and not known <= files.keys():
                self._drop(day)  # a file went away: the day is read again whole
                known = None
            if known is None:
                self._con.execute(f"CREATE OR REPLACE TABLE {_table(day)} (event_id VARCHAR)")
            todo = [str(p) for name, p in files.items() if known is None or name not in known]
            if todo:
                self._con.execute(
                    f"INSERT INTO {_table(day)} SELECT event_id "
                    "FROM read_parquet(?, hive_partitioning = false)",
                    [todo],
                )
            self._files[day] = set(files)
            self._files.move_to_end(day)
        for day in [d for d in self._files if d not in wanted]:
            if len(self._files) <= self.max_days:
                break
            self._drop(day)

    def fresh(self, events: pa.Table) -> pa.Table:
        """The first copy of each event whose id is neither held nor repeated earlier.

        Only ids of loaded days are compared: call ``load`` with the batch's days first.
        """
        held = " UNION ALL ".join(f"SELECT event_id FROM {_table(d)}" for d in self._files)
        seen = f"NOT EXISTS (SELECT 1 FROM ({held}) s WHERE s.event_id = b.event_id)"
        self._con.register("_batch", events)
        try:
            return self._con.execute(
                f"SELECT * FROM _batch b WHERE {seen if held else 'true'} "
                "QUALIFY row_number() OVER (PARTITION BY event_id) = 1"
            ).to_arrow_table()
        finally:
            self._con.unregister("_batch")

    def add(self, events: pa.Table, parts: Mapping[str, Path]) -> None:
        """Hold the ids of events just written as ``parts`` (day -> part file)."""
        if events.num_rows == 0:
            return
        for day, rows in by_day(events.select([C.EVENT_ID, C.TS])):
            part = parts.get(day)
            if part is None or day not in self._files:  # not loaded: read whole when needed
                continue
            self._con.register("_written", rows)
            try:
                self._con.execute(f"INSERT INTO {_table(day)} SELECT event_id FROM _written")
            finally:
                self._con.unregister("_written")
            self._files[day].add(part.name)

    def close(self) -> None:
        """Release the table."""
        self._files.clear()
        self._con.close()

    def _drop(self, day: str) -> None:
        self._con.execute(f"DROP TABLE IF EXISTS {_table(day)}")  # frees the day's memory
        self._files.pop(day, None)


def _table(day: str) -> str:
    """The table of one day's ids (``day`` is checked: it becomes part of the SQL)."""
    if not _DAY.fullmatch(day):
        raise ValueError(f"not a YYYY-MM-DD day: {day!r}")
    return "seen_" + day.replace("-", "_")
