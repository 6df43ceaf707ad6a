"""Ingestion: read a file in batches, run the named checks, store good rows, quarantine the rest.

Always ``read == stored + quarantined``. Catalog rows are upserted by id; events are
deduplicated by ``event_id`` against the whole log, so a rerun after a crash or a repeated
ingestion adds nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.ingest import checks
from moodboard.ingest.eventlog import EVENT_SCHEMA
from moodboard.ingest.media import image_problems, stored_images
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.readers import ROW, Batch, read_batches
from moodboard.ingest.workspace import PRODUCT_FIELDS, Workspace

_log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named check over a file."""

    name: str
    failed: int
    examples: tuple[int, ...]

    @property
    def passed(self) -> bool:
        """True when no row failed."""
        return self.failed == 0


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


def _prepare(batch: Batch, kind: str, mapping: Mapping[str, str], source: str) -> pa.Table:
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
                f"{[n for n in names if n != ROW]}."
            )
    canonical = C.CATALOG_COLUMNS if kind == "catalog" else C.EVENT_COLUMNS
    for col in canonical:
        if col not in names:
            t = t.append_column(col, pa.nulls(t.num_rows, pa.string()))
    return t.append_column(POS, pa.array(range(t.num_rows), type=pa.int64()))


def _extras(table: pa.Table, kind: str) -> list[str]:
    canonical = set(C.CATALOG_COLUMNS if kind == "catalog" else C.EVENT_COLUMNS)
    return [
        n
        for n in table.column_names
        if n not in canonical and not n.startswith("_") and n not in (C.ATTRIBUTES, C.PROPS)
    ]


def _checked(con: duckdb.DuckDBPyConnection, table: pa.Table, kind: str) -> pa.Table:
    helper = (
        ["_image_problem"]
        if kind == "catalog"
        else [f'coalesce("{C.ITEM_ID}" IN (SELECT id FROM _known_items), false) AS _item_known']
    )
    con.register("_batch", table)
    try:
        sql = checks.checked_sql(kind, "_batch", [*_extras(table, kind), POS], helper)
        return con.execute(sql).to_arrow_table()
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


def _batches(path: Path, chunk_rows: int, encoding: str) -> Iterator[Batch]:
    yield from read_batches(path, chunk_rows=chunk_rows, encoding=encoding)


def _store_catalog(
    ws: Workspace, con: duckdb.DuckDBPyConnection, good: pa.Table, extras: list[str], base: Path
) -> None:
    import json

    ext = {n: good.column(n).to_pylist() for n in extras}
    attrs = [
        json.dumps({k: v[i] for k, v in ext.items() if v[i] not in (None, "")}, ensure_ascii=False)
        for i in range(good.num_rows)
    ]

    def earlier() -> list[str]:
        rows = con.execute("SELECT DISTINCT image FROM products WHERE image IS NOT NULL")
        return [str(p) for (p,) in rows.fetchall()]

    images = stored_images(ws.root, good.column(C.IMAGE).to_pylist(), base, earlier)
    cols = {f: good.column(f) for f in PRODUCT_FIELDS if f not in (C.ATTRIBUTES, C.IMAGE)}
    table = pa.table(
        {**cols, C.IMAGE: pa.array(images, pa.string()), C.ATTRIBUTES: pa.array(attrs, pa.string())}
    )
    con.execute("BEGIN")
    ws.upsert_products(con, table)
    con.execute("COMMIT")


def _source(
    source: Path | str | Iterable[pa.Table], chunk_rows: int, encoding: str
) -> tuple[str, Iterator[Batch]]:
    if isinstance(source, (str, Path)):
        return str(source), _batches(Path(source), chunk_rows, encoding)
    return "<memory>", _table_batches(source)


def ingest_catalog(
    ws: Workspace,
    source: Path | str | Iterable[pa.Table],
    mapping: Mapping[str, str] | None = None,
    *,
    base: Path | None = None,
    chunk_rows: int = 100_000,
    check_images: bool = True,
    media_roots: Sequence[Path | str] = (),
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest a catalog (a CSV, JSONL or Parquet file, or tables), upserting products by id.

    Parameters
    ----------
    base
        The folder relative image paths are resolved against, and must stay inside (symlinks
        resolved); default the file's folder (or the working directory for tables).
    check_images
        Decode every local image (a row whose image is not a whole JPEG, PNG or WebP is
        quarantined with the reason).
    media_roots
        Folders an absolute image path must lie under (``ingest.media_roots``); empty: any.

    Raises
    ------
    InputError
        If the file cannot be read or lacks a required column.
    """
    path, batches = _source(source, chunk_rows, encoding)
    if base is None:
        base = Path(path).resolve().parent if isinstance(source, (str, Path)) else Path.cwd()
    base = Path(base).resolve()
    roots = [Path(r).resolve() for r in media_roots]
    ws.init()
    q = Quarantine(ws.quarantine_dir, "catalog", path)
    read = stored = 0
    with ws.connect() as con:
        try:
            for batch in batches:
                table = _prepare(batch, "catalog", mapping or {}, path)
                table = table.append_column(
                    "_image_problem",
                    image_problems(table.column(C.IMAGE), base, check_images, roots),
                )
                checked = _checked(con, table, "catalog")
                good = checked.filter(pc.equal(checked.column("_reason"), ""))
                quarantine_checked(q, batch, checked)
                _store_catalog(ws, con, good, _extras(table, "catalog"), base)
                read += batch.read
                stored += good.num_rows
                if progress:
                    progress(batch.read)
        finally:
            q.close()
    report = IngestReport(read, stored, q.count, str(q.path) if q.path else None, stored)
    _log.info("catalog %s: %s", path, report.summary())
    return report


def _event_table(good: pa.Table, extras: list[str], con: duckdb.DuckDBPyConnection) -> pa.Table:
    props = pa.nulls(good.num_rows, pa.string())
    if extras:
        con.register("_good", good.select(extras))
        args = ", ".join(f"'{e.replace(chr(39), chr(39) * 2)}', \"{e}\"" for e in extras)
        props = con.execute(f"SELECT json_object({args})::VARCHAR FROM _good").to_arrow_table()[0]
        con.unregister("_good")
    cols = [good.column(n) if n != C.PROPS else props for n in EVENT_SCHEMA.names]
    return pa.Table.from_arrays(cols, names=EVENT_SCHEMA.names).cast(EVENT_SCHEMA)


def check_events(
    con: duckdb.DuckDBPyConnection,
    batch: Batch,
    source: str = "<memory>",
    mapping: Mapping[str, str] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Run the named event checks over a batch; ``con`` must hold a ``_known_items`` table.

    Returns every row with its ``_reason`` ('' when it passes), then the passing rows in
    ``EVENT_SCHEMA``.

    Raises
    ------
    InputError
        If the batch lacks a required column.
    """
    table = _prepare(batch, "events", mapping or {}, source)
    checked = _checked(con, table, "events")
    good = checked.filter(pc.equal(checked.column("_reason"), ""))
    return checked, _event_table(good, _extras(table, "events"), con)


class EventWriter:
    """Stores checked event batches: dedup by event_id, users, board items, then the log.

    Parameters
    ----------
    ws
        The workspace.
    con
        An open connection to the workspace database, held for the whole ingestion.
    """

    def __init__(self, ws: Workspace, con: duckdb.DuckDBPyConnection) -> None:
        self.ws = ws
        self.con = con
        con.execute("CREATE OR REPLACE TEMP TABLE _known_items AS SELECT id FROM products")
        src = (
            f"SELECT event_id FROM read_parquet('{ws.events.glob()}')"
            if ws.events.files()
            else "SELECT NULL::VARCHAR AS event_id WHERE false"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _seen AS {src}")

    def write(self, events: pa.Table) -> int:
        """Store events in ``EVENT_SCHEMA``; returns how many were new."""
        con = self.con
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
            fresh = con.execute(
                "SELECT * FROM _valid v WHERE NOT EXISTS (SELECT 1 FROM _seen s WHERE "
                "s.event_id = v.event_id) QUALIFY row_number() OVER (PARTITION BY event_id) = 1"
            ).to_arrow_table()
        finally:
            con.unregister("_valid")
        n = self.ws.events.append(fresh)
        con.register("_fresh", fresh.select([C.EVENT_ID]))
        con.execute("INSERT INTO _seen SELECT event_id FROM _fresh")
        con.unregister("_fresh")
        return n


def ingest_events(
    ws: Workspace,
    source: Path | str | Iterable[pa.Table],
    mapping: Mapping[str, str] | None = None,
    *,
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest events from a file, or from tables of string columns (the simulator's path).

    Raises
    ------
    InputError
        If the file cannot be read or lacks a required column.
    """
    name, batches = _source(source, chunk_rows, encoding)
    ws.init()
    q = Quarantine(ws.quarantine_dir, "events", name)
    read = stored = new = 0
    with ws.connect() as con:
        writer = EventWriter(ws, con)
        try:
            for batch in batches:
                checked, good = check_events(con, batch, name, mapping)
                quarantine_checked(q, batch, checked)
                new += writer.write(good)
                read += batch.read
                stored += good.num_rows
                if progress:
                    progress(batch.read)
        finally:
            q.close()
    report = IngestReport(read, stored, q.count, str(q.path) if q.path else None, new)
    _log.info("events %s: %s (%d new)", name, report.summary(), new)
    return report


def _table_batches(tables: Iterable[pa.Table]) -> Iterator[Batch]:
    start = 1
    for t in tables:
        t = pa.table({n: t.column(n).cast(pa.string()) for n in t.column_names})
        t = t.append_column(ROW, pa.array(range(start, start + t.num_rows), pa.int64()))
        start += t.num_rows
        yield Batch(t, t)


def validate(
    ws: Workspace,
    kind: str,
    path: Path,
    mapping: Mapping[str, str] | None = None,
    *,
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
) -> tuple[int, list[CheckResult]]:
    """Run every named check over a file without storing anything.

    Returns
    -------
    tuple
        The rows read and one ``CheckResult`` per check (``parses`` first).

    Raises
    ------
    InputError
        If the file cannot be read or lacks a required column.
    """
    path = Path(path)
    totals: dict[str, list[Any]] = {"parses": [0, []]}
    read = 0
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if ws.exists():
        con.execute(f"ATTACH '{ws.db_path}' AS ws (READ_ONLY)")
        con.execute("CREATE TEMP TABLE _known_items AS SELECT id FROM ws.products")
    else:
        con.execute("CREATE TEMP TABLE _known_items (id VARCHAR)")
    for batch in _batches(path, chunk_rows, encoding):
        table = _prepare(batch, kind, mapping or {}, str(path))
        if kind == "catalog":
            table = table.append_column(
                "_image_problem", image_problems(table.column(C.IMAGE), path.resolve().parent, True)
            )
        checked = _checked(con, table, kind)
        con.register("_checked", checked)
        for name, failed, examples in con.execute(
            checks.check_counts_sql(kind, "_checked")
        ).fetchall():
            acc = totals.setdefault(name, [0, []])
            acc[0] += failed
            acc[1] = (acc[1] + list(examples or []))[:5]
        con.unregister("_checked")
        totals["parses"][0] += len(batch.bad)
        totals["parses"][1] = (totals["parses"][1] + [b.row for b in batch.bad])[:5]
        read += batch.read
    con.close()
    return read, [CheckResult(n, int(v[0]), tuple(v[1])) for n, v in totals.items()]
