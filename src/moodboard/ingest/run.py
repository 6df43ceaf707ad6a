"""Ingestion: read a file in batches, run the named checks, store good rows, quarantine the rest.

Always ``read == stored + quarantined``. Catalog rows are upserted by id; events are
deduplicated by ``event_id`` against the whole log, so a rerun after a crash or a repeated
ingestion adds nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import IngestSettings
from moodboard.data import columns as C
from moodboard.ingest import checks
from moodboard.ingest.events import EventWriter, check_events, ingest_events
from moodboard.ingest.media import image_problems, stored_images
from moodboard.ingest.prepare import (
    POS,
    IngestReport,
    Progress,
    checked,
    keep_keys,
    parse_mapping,
    prepare,
    quarantine_checked,
    source_batches,
)
from moodboard.ingest.quarantine import Quarantine
from moodboard.ingest.readers import read_batches
from moodboard.ingest.workspace import PRODUCT_FIELDS, Workspace, connect_memory

__all__ = [
    "POS",
    "CheckResult",
    "EventWriter",
    "IngestReport",
    "Progress",
    "check_events",
    "ingest_catalog",
    "ingest_events",
    "parse_mapping",
    "quarantine_checked",
    "validate",
]

_log = logging.getLogger(__name__)


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


def _store_catalog(
    ws: Workspace, con: duckdb.DuckDBPyConnection, good: pa.Table, base: Path
) -> None:
    attrs = [a if a is not None else "{}" for a in good.column(C.ATTRIBUTES).to_pylist()]

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
    path, batches = source_batches(source, "catalog", mapping, chunk_rows, encoding)
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
                table = prepare(batch, "catalog", mapping or {}, path)
                table = table.append_column(
                    "_image_problem",
                    image_problems(table.column(C.IMAGE), base, check_images, roots),
                )
                rows = checked(con, table, "catalog")
                good = rows.filter(pc.equal(rows.column("_reason"), ""))
                quarantine_checked(q, batch, rows)
                _store_catalog(ws, con, good, base)
                read += batch.read
                stored += good.num_rows
                if progress:
                    progress(batch.read)
        finally:
            q.close()
    report = IngestReport(read, stored, q.count, str(q.path) if q.path else None, stored)
    _log.info("catalog %s: %s", path, report.summary())
    return report


def validate(
    ws: Workspace,
    kind: str,
    path: Path,
    mapping: Mapping[str, str] | None = None,
    *,
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    limits: IngestSettings | None = None,
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
    known = pa.table({"id": pa.array([], pa.string())})
    if ws.exists():
        with ws.connect(read_only=True) as wcon:
            known = wcon.execute("SELECT id FROM products").to_arrow_table()
    con = connect_memory()
    con.register("_ids", known)
    con.execute("CREATE TEMP TABLE _known_items AS SELECT id FROM _ids")
    con.unregister("_ids")
    keep = keep_keys(kind, mapping)
    for batch in read_batches(path, chunk_rows=chunk_rows, encoding=encoding, keep=keep):
        table = prepare(batch, kind, mapping or {}, str(path), limits)
        if kind == "catalog":
            table = table.append_column(
                "_image_problem", image_problems(table.column(C.IMAGE), path.resolve().parent, True)
            )
        rows = checked(con, table, kind, limits)
        con.register("_checked", rows)
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
