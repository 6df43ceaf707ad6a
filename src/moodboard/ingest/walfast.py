"""Compaction's fast path: clean WAL segments parsed by DuckDB's JSON reader, not row by row.

The event WAL's lines are events the server made (``EventWAL.log``) or accepted after every
check (``EventWAL.accept``), so at compaction nearly every batch is *plain*: each line a JSON
object with distinct keys, only core keys plus ``props``, core values that are text (numbers
for ``position`` and ``propensity``, an object for ``arms``), ``props`` an object whose key
names pass the field rules, every size well inside its limit. For such a batch the rows that
``prepare`` would make (core columns as text, ``props`` as one JSON object text, no
``_fields`` problem) are built in one SQL statement over ``read_ndjson_objects``, which parses
in C++ without holding Python's GIL; the named checks (``checked``) then run as on any batch.

Anything else (a torn or unreadable line, an extra field, a name or size the rules would
refuse, a row failing a check) makes ``plain_events`` answer None, and the caller stores the
batch through the row-by-row path, which quarantines each failing row with its reason. Both
paths store the same events; the JSON texts of ``props`` and ``arms`` are written compactly
here (``{"a":1}``) and with spaces there (``{"a": 1}``): readers parse them.

The size rules are checked conservatively: a core value's UTF-8 bytes must be within
``max_value_chars`` (a character count), and so must twice the compact ``props`` text (the
row-by-row path measures each value's spaced JSON text, at most twice its compact form).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa

from moodboard.config import IngestSettings
from moodboard.data import columns as C
from moodboard.ingest.fields import FIELDS, RowRules
from moodboard.ingest.prepare import POS, checked
from moodboard.ingest.readers import ROW

_log = logging.getLogger(__name__)

#: Segments read in one statement at most (bytes); more make several batches.
GROUP_BYTES = 64 * 2**20
#: Core fields that may be JSON numbers in a WAL line; the others must be text (or null).
_KEYS = (*C.EVENT_COLUMNS, C.PROPS)
_NUMBERS = (C.POSITION, C.PROPENSITY)
_TEXTS = tuple(c for c in C.EVENT_COLUMNS if c not in (*_NUMBERS, C.ARMS))
_NUMBER_TYPES = "('NULL', 'VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')"
#: Each line parsed once: its keys, then each key's JSON type and text (lists in ``_KEYS``
#: order), then the keys of its ``props``.
_READ = f"""
    CREATE OR REPLACE TEMP TABLE _wal_lines AS
    SELECT row_number() OVER () AS {ROW}, json_type(json) AS root, json_keys(json) AS k,
        json_type(json, [{", ".join(f"'$.{c}'" for c in _KEYS)}]) AS t,
        json_extract_string(json, [{", ".join(f"'$.{c}'" for c in _KEYS)}]) AS v,
        coalesce(json_keys(json, '$.{C.PROPS}'), []) AS pk
    FROM read_ndjson_objects(?)
"""


def byte_groups(paths: list[Path], limit: int = GROUP_BYTES) -> list[list[Path]]:
    """Consecutive segments in groups of at most ``limit`` bytes (a larger one alone)."""
    groups: list[list[Path]] = []
    size = 0
    for p in paths:
        n = p.stat().st_size if p.exists() else 0
        if not groups or size + n > limit:
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += n
    return groups


def _t(col: str) -> str:
    return f"coalesce(t[{_KEYS.index(col) + 1}], 'NULL')"


def _v(col: str) -> str:
    return f"v[{_KEYS.index(col) + 1}]"


def _plain_sql() -> str:
    """One row: is every line plain, and the distinct ``props`` key names."""
    keys = ", ".join(f"'{k}'" for k in _KEYS)
    required = ", ".join(f"'{k}'" for k in C.EVENT_REQUIRED)
    texts = " AND ".join(f"{_t(c)} IN ('NULL', 'VARCHAR')" for c in _TEXTS)
    numbers = " AND ".join(f"{_t(c)} IN {_NUMBER_TYPES}" for c in _NUMBERS)
    present = " + ".join(f"({_t(c)} <> 'NULL')::INT" for c in C.EVENT_COLUMNS)
    sizes = ", ".join(f"coalesce(strlen({_v(c)}), 0)" for c in (*_TEXTS, C.ARMS))
    return f"""
        SELECT
            coalesce(bool_and(
                root = 'OBJECT'
                AND len(k) = len(list_distinct(k))
                AND len(list_filter(k, x -> NOT list_contains([{keys}], x))) = 0
                AND list_has_all(k, [{required}])
                AND {texts} AND {numbers}
                AND {_t(C.ARMS)} IN ('NULL', 'VARCHAR', 'OBJECT')
                AND {_t(C.PROPS)} IN ('NULL', 'OBJECT')
                AND len(pk) = len(list_distinct(pk))
                AND 2 * coalesce(strlen({_v(C.PROPS)}), 0) <= $cap
                AND greatest({sizes}) <= $cap
                AND {present} + len(pk) <= $max_keys
            ), true),
            list_distinct(flatten(list(pk)))
        FROM _wal_lines
    """


def _rows_sql() -> str:
    """The lines as ``prepare`` makes a batch: text columns, ``props``, ``_fields``, ``_pos``."""
    cols = ", ".join(f"{_v(c)} AS {c}" for c in C.EVENT_COLUMNS)
    props = f"CASE WHEN len(pk) > 0 THEN {_v(C.PROPS)} END AS {C.PROPS}"
    return f"""
        SELECT {ROW}, {cols}, {props}, '' AS {FIELDS}, {ROW} - 1 AS {POS}
        FROM _wal_lines ORDER BY {ROW}
    """


def plain_events(
    con: duckdb.DuckDBPyConnection, paths: list[Path], limits: IngestSettings | None = None
) -> tuple[pa.Table, str] | tuple[None, str]:
    """The checked rows of plain segments (see the module docstring), or None and why not.

    ``con`` must hold the ``_known_items`` table the checks read. The rows are ``checked``'s
    output (``_reason`` '' on every row); ``None`` when the batch is not plain or a row fails.
    """
    limits = limits if limits is not None else IngestSettings()
    files = [str(p) for p in paths if p.exists()]
    if not files:
        return None, "no segment left"
    try:
        con.execute(_READ, [files])
    except duckdb.Error as e:  # a torn or unreadable line: the row-by-row path reports it
        return None, f"the JSON reader refused a line ({str(e).splitlines()[0][:200]})"
    try:
        ok, names = con.execute(
            _plain_sql(),
            {"cap": limits.max_value_chars, "max_keys": limits.max_keys_per_event},
        ).fetchone()
        if not ok:
            return None, "a line is not plain (an extra field, a type or size to check)"
        if RowRules("events", limits).names(list(names or [])):
            return None, "a props key name needs the field rules"
        table = con.execute(_rows_sql()).to_arrow_table()
    finally:
        con.execute("DROP TABLE IF EXISTS _wal_lines")
    rows = checked(con, table, "events", limits)
    if rows.num_rows and any(rows.column("_reason").to_pylist()):
        return None, "a row fails a check"
    return rows, ""
