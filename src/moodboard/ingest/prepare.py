"""The steps every ingestion shares: a batch as canonical columns, its checks, its quarantine.

``prepare`` renames columns by ``--map``, requires the required ones, and folds every extra
field into the row's JSON object column (``fields.fold_extras``); ``checked`` runs the named
checks as one SQL statement whose only inputs are the batch and parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import IngestSettings
from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.ingest import checks
from moodboard.ingest.fields import fold_extras, object_column
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.readers import ROW, Batch, read_batches

POS = "_pos"
Progress = Callable[[int], None]


@dataclass(frozen=True)
class IngestReport:
    """What one ingestion did. ``read == stored + quarantined`` always holds."""

    read: int
    stored: int
    quarantined: int
    quarantine_file: str | None
    new: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The report as the CLI's ``--json`` object."""
        return {
            "read": self.read,
            "stored": self.stored,
            "quarantined": self.quarantined,
            "quarantine_file": self.quarantine_file,
        }

    def summary(self) -> str:
        """The one-line summary."""
        return f"read {self.read}, stored {self.stored}, quarantined {self.quarantined}"


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["Old=new", ...]`` as ``{"Old": "new"}``.

    Raises
    ------
    InputError
        If a pair has no ``=``.
    """
    out = {}
    for p in pairs:
        src, sep, dst = p.partition("=")
        if not sep or not src or not dst:
            raise InputError(f"--map takes COLUMN=field, like --map StockCode=id. Got {p!r}.")
        out[src] = dst
    return out


def keep_keys(kind: str, mapping: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The keys of a JSON object that become columns of a batch (see ``records_batch``)."""
    core = C.CATALOG_COLUMNS if kind == "catalog" else C.EVENT_COLUMNS
    return (*core, object_column(kind), *(mapping or {}))


def prepare(
    batch: Batch,
    kind: str,
    mapping: Mapping[str, str],
    source: str,
    limits: IngestSettings | None = None,
) -> pa.Table:
    """A batch as canonical string columns, its object column, ``_fields`` and ``_pos``.

    Raises
    ------
    InputError
        If ``--map`` makes two columns share a name, or a required column is missing.
    """
    t = batch.table.rename_columns([mapping.get(n, n) for n in batch.table.column_names])
    names = t.column_names
    if len(set(names)) != len(names):
        raise InputError(f"{source}: --map makes two columns share a name: {names}.")
    required = C.CATALOG_REQUIRED if kind == "catalog" else C.EVENT_REQUIRED
    if t.num_rows:
        absent = [c for c in required if c not in names]
        if absent:
            raise InputError(
                f"{source} lacks the required column {' and '.join(repr(a) for a in absent)}: "
                f"rename yours with --map YOURCOLUMN={absent[0]}. Columns found: "
                f"{[n for n in names if not n.startswith('_')]}."
            )
    t = fold_extras(t, kind, limits)
    return t.append_column(POS, pa.array(range(t.num_rows), type=pa.int64()))


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def ts_bounds(limits: IngestSettings | None = None) -> dict[str, datetime]:
    """The ``$ts_min`` and ``$ts_max`` parameters of the event checks, as of now."""
    limits = limits if limits is not None else IngestSettings()
    latest = datetime.now(UTC) + timedelta(seconds=limits.max_clock_skew_s)
    return {"ts_min": _naive_utc(limits.min_event_ts), "ts_max": _naive_utc(latest)}


def checked(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    kind: str,
    limits: IngestSettings | None = None,
) -> pa.Table:
    """Run the named checks of a kind over a prepared batch; adds ``_reason``.

    For events, ``con`` must hold a ``_known_items`` table.
    """
    target = object_column(kind)
    if kind == "catalog":
        helper, params = ["_image_problem"], None
    else:
        helper = [
            f'coalesce("{C.ITEM_ID}" IN (SELECT id FROM _known_items), false) AS _item_known',
            *checks.ts_bounds_sql(),
        ]
        params = ts_bounds(limits)
    con.register("_batch", table)
    try:
        sql = checks.checked_sql(kind, "_batch", [target, POS], helper)
        return con.execute(sql, params).to_arrow_table()
    finally:
        con.unregister("_batch")


def quarantine_checked(q: Quarantine, batch: Batch, checked: pa.Table) -> None:
    """Quarantine a checked batch's failing rows (as the input had them) and its bad lines."""
    bad = checked.filter(pc.not_equal(checked.column("_reason"), ""))
    if bad.num_rows:
        originals = batch.original_rows(bad.column(POS).to_pylist())
        for orig, reason, row in zip(
            originals, bad.column("_reason").to_pylist(), bad.column(ROW).to_pylist(), strict=True
        ):
            q.add({k: v for k, v in orig.items() if not k.startswith("_")}, reason, row)
    for line in batch.bad:
        q.add_raw(line.text, f"parses: {line.reason}", line.row)
    q.flush()


def table_batches(tables: Iterable[pa.Table]) -> Iterator[Batch]:
    """Batches of string columns from tables (the simulator's and the datasets' path)."""
    start = 1
    for t in tables:
        t = pa.table({n: t.column(n).cast(pa.string()) for n in t.column_names})
        t = t.append_column(ROW, pa.array(range(start, start + t.num_rows), pa.int64()))
        start += t.num_rows
        yield Batch(t, t)


def source_batches(
    source: Path | str | Iterable[pa.Table],
    kind: str,
    mapping: Mapping[str, str] | None,
    chunk_rows: int,
    encoding: str,
) -> tuple[str, Iterator[Batch]]:
    """The name of a source (a file, or ``<memory>`` for tables) and its batches."""
    if isinstance(source, (str, Path)):
        keep = keep_keys(kind, mapping)
        return str(source), read_batches(Path(source), chunk_rows, encoding, keep)
    return "<memory>", table_batches(source)
