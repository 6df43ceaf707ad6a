"""The workspace: one folder holding the catalog database, the event log and the artifacts.

Layout::

    DIR/moodboard.duckdb        products, boards, board_items, users
    DIR/events/day=YYYY-MM-DD/  append-only Parquet parts (see EventLog)
    DIR/artifacts/<version>/    built indexes and models, each with manifest.json
    DIR/CURRENT                 the live artifact version
    DIR/quarantine/             rejected rows with the reason
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from moodboard.data import Board, Product
from moodboard.data import columns as C
from moodboard.errors import InputError, NotFoundError
from moodboard.ingest.dbconnect import connect_db
from moodboard.ingest.eventlog import EventLog, atomic_write_bytes

_log = logging.getLogger(__name__)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS products (
    {C.ID} VARCHAR PRIMARY KEY, {C.TITLE} VARCHAR NOT NULL, {C.DESCRIPTION} VARCHAR,
    {C.BRAND} VARCHAR, {C.CATEGORY} VARCHAR, {C.PRICE} DOUBLE, {C.CURRENCY} VARCHAR,
    {C.IMAGE} VARCHAR, {C.ATTRIBUTES} VARCHAR, {C.CREATED_AT} TIMESTAMP,
    ingested_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS users (
    id VARCHAR PRIMARY KEY, first_seen TIMESTAMP
);
CREATE TABLE IF NOT EXISTS boards (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, title VARCHAR, created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS board_items (
    board_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, added_at TIMESTAMP,
    PRIMARY KEY (board_id, item_id)
);
"""

#: The artifact version names ``moodboard build`` gives: ``v`` + UTC time to the microsecond.
VERSION_PATTERN = re.compile(r"v[0-9]{8}T[0-9]{12}Z")
#: The ``strftime`` format of those names.
VERSION_FORMAT = "v%Y%m%dT%H%M%S%fZ"

PRODUCT_FIELDS = (
    C.ID,
    C.TITLE,
    C.DESCRIPTION,
    C.BRAND,
    C.CATEGORY,
    C.PRICE,
    C.CURRENCY,
    C.IMAGE,
    C.ATTRIBUTES,
    C.CREATED_AT,
)


def connect_memory() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection set to UTC, for batch processing."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


class Workspace:
    """One workspace folder.

    Parameters
    ----------
    root
        The folder; created on first write.
    db_wait_s
        How long a connection waits for the database while another process holds it
        (``serve.db_wait_s`` in the server).
    """

    def __init__(self, root: Path | str, db_wait_s: float = 1.0) -> None:
        self.root = Path(root)
        self.db_wait_s = db_wait_s

    # -- paths -------------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        """The DuckDB database file."""
        return self.root / "moodboard.duckdb"

    @property
    def events(self) -> EventLog:
        """The append-only event log."""
        return EventLog(self.root / "events")

    @property
    def artifacts_dir(self) -> Path:
        """Where built artifact versions live."""
        return self.root / "artifacts"

    @property
    def quarantine_dir(self) -> Path:
        """Where rejected rows are written."""
        return self.root / "quarantine"

    def exists(self) -> bool:
        """Whether the workspace has been created."""
        return self.db_path.exists()

    def init(self) -> Workspace:
        """Create the folders and tables if they are missing; returns self."""
        for d in (self.root, self.root / "events", self.artifacts_dir, self.quarantine_dir):
            d.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.execute(_SCHEMA)
        self.events.clean_temporary()
        return self

    def connect(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A short-lived connection to the workspace database, in UTC (see ``connect_db``).

        Reads should pass ``read_only=True``: they then share the file with other processes
        that only read (a ``moodboard status``), and wait for a writer for at most
        ``db_wait_s``.

        Raises
        ------
        ServerBusyError
            If another process still holds the database after ``db_wait_s``.
        StorageFullError
            If a write fails because the disk is full.
        """
        return connect_db(self.db_path, read_only=read_only, wait_s=self.db_wait_s)

    # -- catalog -----------------------------------------------------------------------------
    def upsert_products(self, con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
        """Insert or replace products (by id) from a table with ``PRODUCT_FIELDS``."""
        if table.num_rows == 0:
            return 0
        con.register("_incoming", table.select(list(PRODUCT_FIELDS)))
        cols = ", ".join(PRODUCT_FIELDS)
        con.execute(f"INSERT OR REPLACE INTO products ({cols}) SELECT {cols} FROM _incoming")
        con.unregister("_incoming")
        return table.num_rows

    def products_table(self) -> pa.Table:
        """All products, ordered by id."""
        if not self.exists():
            return pa.table({f: pa.array([], pa.string()) for f in PRODUCT_FIELDS})
        with self.connect(read_only=True) as con:
            cols = ", ".join(PRODUCT_FIELDS)
            return con.execute(f"SELECT {cols} FROM products ORDER BY {C.ID}").to_arrow_table()

    def products(self, ids: Iterable[str] | None = None) -> list[Product]:
        """Products as ``Product`` objects (all, or the given ids in that order).

        Raises
        ------
        NotFoundError
            If one of ``ids`` is not in the catalog.
        """
        rows = self.products_table().to_pylist()
        by_id = {r[C.ID]: r for r in rows}
        if ids is not None:
            wanted = list(ids)
            missing = [i for i in wanted if i not in by_id]
            if missing:
                raise NotFoundError(f"Products not in the catalog: {missing[:5]}")
            rows = [by_id[i] for i in wanted]
        return [product_from_row(r) for r in rows]

    # -- boards and users --------------------------------------------------------------------
    def upsert_boards(self, boards: Iterable[Board]) -> int:
        """Create boards (or update their titles) and add their items."""
        boards = list(boards)
        meta = pa.table(
            {
                "id": [b.id for b in boards],
                "user_id": [b.user_id for b in boards],
                "title": pa.array([b.title for b in boards], pa.string()),
            }
        )
        items = pa.table(
            {
                "board_id": [b.id for b in boards for _ in b.item_ids],
                "item_id": pa.array([i for b in boards for i in b.item_ids], pa.string()),
            }
        )
        with self.connect() as con:
            con.register("_boards", meta)
            con.register("_items", items)
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO boards SELECT id, user_id, title, now() FROM _boards "
                "ON CONFLICT (id) DO UPDATE SET title = coalesce(excluded.title, title)"
            )
            con.execute(
                "INSERT OR IGNORE INTO board_items SELECT board_id, item_id, now() FROM _items"
            )
            con.execute("INSERT OR IGNORE INTO users SELECT DISTINCT user_id, NULL FROM _boards")
            con.execute("COMMIT")
        return len(boards)

    def boards(self, user_id: str | None = None) -> list[Board]:
        """Boards with their items, optionally of one user."""
        if not self.exists():
            return []
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT b.id, b.user_id, b.title, list(i.item_id ORDER BY i.added_at, i.item_id) "
                "FILTER (WHERE i.item_id IS NOT NULL) FROM boards b LEFT JOIN board_items i "
                "ON i.board_id = b.id WHERE ? IS NULL OR b.user_id = ? GROUP BY ALL ORDER BY b.id",
                [user_id, user_id],
            ).fetchall()
        return [Board(id=r[0], user_id=r[1], title=r[2], item_ids=tuple(r[3] or ())) for r in rows]

    # -- artifacts ---------------------------------------------------------------------------
    def current_artifact(self) -> str | None:
        """The live artifact version named by ``CURRENT``, or None."""
        p = self.root / "CURRENT"
        if not p.exists():
            return None
        v = p.read_bytes()[:256].decode(errors="replace").strip()
        return v or None

    def version_path(self, version: str) -> Path:
        """The folder of an artifact version, which must lie in ``artifacts/``.

        Raises
        ------
        InputError
            If ``version`` is not a version name ``moodboard build`` gives (``VERSION_PATTERN``)
            or its folder resolves outside ``artifacts/`` (a symlink).
        """
        if not VERSION_PATTERN.fullmatch(version):
            raise InputError(
                f"{version[:80]!r} is not an artifact version name: versions look like "
                "v20260101T120000000000Z (what `moodboard build` writes). Fix CURRENT."
            )
        path = self.artifacts_dir / version
        if path.resolve().parent != self.artifacts_dir.resolve():
            raise InputError(
                f"Artifact {version!r} resolves outside {self.artifacts_dir}: remove the link "
                "and build again."
            )
        return path

    def set_current(self, version: str) -> None:
        """Make a built version live, atomically.

        Raises
        ------
        InputError
            If ``version`` is not a version name.
        NotFoundError
            If the version has no manifest (an unfinished build never goes live).
        """
        if not (self.version_path(version) / "manifest.json").is_file():
            raise NotFoundError(f"Artifact {version!r} has no manifest.json; it cannot go live.")
        atomic_write_bytes(self.root / "CURRENT", (version + "\n").encode())

    # -- summary -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Counts of products, boards, users and events by type, and the live artifact."""
        out: dict[str, Any] = {
            "products": 0,
            "boards": 0,
            "users": 0,
            "events": {},
            "events_total": 0,
            "artifact": self.current_artifact(),
        }
        if not self.exists():
            return out
        with self.connect(read_only=True) as con:
            for t in ("products", "boards", "users"):
                out[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            files = [str(f) for f in self.events.files()]
            if files:
                rows = con.execute(
                    "SELECT type, count(*) FROM read_parquet(?, hive_partitioning = false) "
                    "GROUP BY type ORDER BY type",
                    [files],
                ).fetchall()
                out["events"] = {t: int(n) for t, n in rows}
                out["events_total"] = int(sum(n for _, n in rows))
        return out


def product_from_row(row: dict[str, Any]) -> Product:
    """A ``Product`` from a products-table row."""
    attrs = row.get(C.ATTRIBUTES)
    return Product.from_row(row, json.loads(attrs) if attrs else {})
