"""Extra fields: every field that is not a core column is kept verbatim in one JSON object.

An event's extras go to its ``props``, a product's to its ``attributes``: one JSON text per
row, built from that row's own fields only (a client's ``props`` object merged with its other
top-level extras), so no key of one row reaches another and no field name ever becomes a SQL
identifier. The names and sizes are checked here, per row, with named checks whose reasons
say what to fix:

- ``field_names_distinct``: two names of a row equal after casefold (``Color`` and ``color``,
  ``TYPE`` and the core ``type``), or a key both at the top level and in ``props``;
- ``field_names_allowed``: an empty name, one with control characters, or (in ``props``) one
  starting with ``_`` (moodboard's own prefix);
- ``field_limits`` (events): more fields than ``ingest.max_keys_per_event``, a value longer
  than ``ingest.max_value_chars``, a name longer than ``ingest.max_name_chars``;
- ``props_is_object`` / ``attributes_is_object``: the client's object is not a JSON object.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import IngestSettings
from moodboard.data import columns as C
from moodboard.ingest.readers import EXTRA

#: The per-row reasons of the field checks ('' when a row passes), read by the named checks.
FIELDS = "_fields"

FIELD_CHECKS = (
    "field_names_distinct",
    "field_names_allowed",
    "field_limits",
    "props_is_object",
    "attributes_is_object",
)


def field_checks(kind: str) -> tuple[str, ...]:
    """The names of the field checks that apply to a kind."""
    if kind == "catalog":
        return ("field_names_distinct", "field_names_allowed", "attributes_is_object")
    return tuple(c for c in FIELD_CHECKS if c != "attributes_is_object")


def core_columns(kind: str) -> tuple[str, ...]:
    """The core columns of a kind (``"catalog"`` or ``"events"``), without its object column."""
    return C.CATALOG_COLUMNS if kind == "catalog" else C.EVENT_COLUMNS


def object_column(kind: str) -> str:
    """The JSON column a kind keeps its extra fields in: ``attributes`` or ``props``."""
    return C.ATTRIBUTES if kind == "catalog" else C.PROPS


def extra_names(names: Iterable[str], kind: str) -> list[str]:
    """The extra columns among ``names``: neither core, nor the object column, nor ``_*``."""
    core = {*core_columns(kind), object_column(kind)}
    return [n for n in names if n not in core and not n.startswith("_")]


def _bad_name(name: str) -> str | None:
    if not name.strip():
        return f"the field name {name!r} is blank: name every field"
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        return f"the field name {name!r} holds control characters: use printable text"
    return None


def _size(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, str):
        return len(v)
    return len(json.dumps(v, ensure_ascii=False, default=str))


class RowRules:
    """The checks of one row's fields, with the settings they read."""

    def __init__(self, kind: str, limits: IngestSettings) -> None:
        self.kind = kind
        self.target = object_column(kind)
        self.limits = limits
        self.events = kind == "events"
        self.core = {c.casefold(): c for c in (*core_columns(kind), self.target)}
        self._names: dict[tuple[str, str], tuple[str, list[str]]] = {}

    def names(self, names: list[str]) -> list[str]:
        """The reasons a set of top-level extra names fails, whatever their values."""
        problems: list[str] = []
        merged: dict[str, Any] = {}
        seen: dict[str, str] = {}
        for k in names:
            self._add(k, None, merged, seen, problems, "field")
        return problems

    def fold(
        self, client: str | None, extras: list[tuple[str, Any]], n_core: int
    ) -> tuple[str | None, list[str]]:
        """The row's JSON object text and the reasons it fails ([] when it passes)."""
        problems: list[str] = []
        merged: dict[str, Any] = {}
        seen: dict[str, str] = {}
        if client is not None:
            try:
                obj = json.loads(client)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                problems.append(
                    f"{self.target}_is_object: {self.target} {client[:80]!r} must be a JSON "
                    'object like {"color": "red"}'
                )
                obj = {}
            for k, v in obj.items():
                self._add(k, v, merged, seen, problems, f"{self.target} key")
        for k, v in extras:
            if k in merged:
                problems.append(
                    f"field_names_distinct: {k!r} is both a top-level field and a {self.target} "
                    f"key: keep one"
                )
                continue
            self._add(k, v, merged, seen, problems, "field")
        if self.events:
            n = n_core + len(merged)
            cap = self.limits.max_keys_per_event
            if n > cap:
                problems.append(
                    f"field_limits: the event has {n} fields; the limit is {cap} "
                    "(ingest.max_keys_per_event): send fewer"
                )
        if not self.events:  # a product's attributes are text (``Product.attributes``)
            merged = {
                k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                for k, v in merged.items()
                if v not in (None, "")
            }
        text = json.dumps(merged, ensure_ascii=False) if merged else None
        return text, problems

    def _add(
        self,
        name: str,
        value: Any,
        merged: dict[str, Any],
        seen: dict[str, str],
        problems: list[str],
        what: str,
    ) -> None:
        folded, static = self._name(name, what)
        problems.extend(static)
        if folded in seen and seen[folded] != name:
            problems.append(
                f"field_names_distinct: the fields {seen[folded]!r} and {name!r} differ only in "
                "case: keep one"
            )
        seen.setdefault(folded, name)
        if self.events:
            size, cap = _size(value), self.limits.max_value_chars
            if size > cap:
                problems.append(
                    f"field_limits: the value of {name[:64]!r} has {size} characters; the limit "
                    f"is {cap} (ingest.max_value_chars): shorten it"
                )
        merged[name] = value

    def _name(self, name: str, what: str) -> tuple[str, list[str]]:
        """A name's casefold and the reasons it fails whatever row it is in (memoized)."""
        hit = self._names.get((name, what))
        if hit is not None:
            return hit
        problems = []
        bad = _bad_name(name)
        if bad:
            problems.append(f"field_names_allowed: {bad}")
        elif name.startswith("_"):
            problems.append(
                f"field_names_allowed: the {what} {name!r} starts with '_', which moodboard "
                "reserves: rename it"
            )
        folded = name.casefold()
        if folded in self.core:
            core = self.core[folded]
            problems.append(
                f"field_names_distinct: the {what} {name!r} is the core field {core!r} in "
                f"another case: rename it, or send it as {core!r}"
            )
        cap = self.limits.max_name_chars
        if self.events and len(name) > cap:
            problems.append(
                f"field_limits: the field name {name[:40]!r}... has {len(name)} characters; "
                f"the limit is {cap} (ingest.max_name_chars)"
            )
        self._names[(name, what)] = (folded, problems)
        return folded, problems


def _core_sizes(table: pa.Table, cols: list[str], cap: int) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(table.num_rows)]
    for c in cols:
        lengths = pc.utf8_length(table.column(c))
        over = pc.greater(lengths, cap)
        if not pc.any(over).as_py():
            continue
        for i in pc.indices_nonzero(pc.fill_null(over, False)).to_pylist():
            out[i].append(
                f"field_limits: the value of {c!r} has {lengths[i].as_py()} characters; the "
                f"limit is {cap} (ingest.max_value_chars): shorten it"
            )
    return out


def _fixed_columns(
    table: pa.Table, extras: list[str], rules: RowRules, core: list[str], problems: list[list[str]]
) -> list[str | None]:
    """The object texts of a batch whose extras are columns (CSV, Parquet, tables): the names
    are checked once, the sizes and counts column by column, empty cells are left out."""
    static = rules.names(extras)
    if rules.events:
        cap = rules.limits.max_keys_per_event
        present = [
            pc.is_valid(pc.if_else(pc.equal(table.column(c), ""), None, table.column(c)))
            for c in (*core, *extras)
        ]
        counts = np.sum([p.to_numpy(zero_copy_only=False) for p in present], axis=0)
        for i in np.flatnonzero(counts > cap).tolist():
            problems[i].append(
                f"field_limits: the event has {int(counts[i])} fields; the limit is {cap} "
                "(ingest.max_keys_per_event): send fewer"
            )
        for i, why in enumerate(_core_sizes(table, extras, rules.limits.max_value_chars)):
            problems[i].extend(why)
    if static:
        for p in problems:
            p.extend(static)
    return _json_objects(table, extras)


def _json_objects(table: pa.Table, extras: list[str]) -> list[str | None]:
    """Per row, the JSON object of its non-empty extra cells (names go in as parameters,
    columns under positional names: no field name becomes SQL)."""
    cols = pa.table({f"_x{i}": table.column(e) for i, e in enumerate(extras)})
    args = ", ".join(f"$k{i}, nullif(_x{i}, '')" for i in range(len(extras)))
    con = duckdb.connect()
    try:
        con.register("_cols", cols)
        obj = f"json_merge_patch('{{}}', json_object({args}))::VARCHAR"
        sql = f"SELECT nullif({obj}, '{{}}') FROM _cols"
        out = con.execute(sql, {f"k{i}": e for i, e in enumerate(extras)}).to_arrow_table()
    finally:
        con.close()
    return out.column(0).to_pylist()


def fold_extras(table: pa.Table, kind: str, limits: IngestSettings | None = None) -> pa.Table:
    """Replace a batch's extra fields by its JSON object column, and add ``_fields``.

    Parameters
    ----------
    table
        A batch after ``--map``: core columns (strings), maybe the object column (the client's
        JSON text), extra columns, maybe ``_extra`` (a records batch's other keys), ``_*``.
    kind
        ``"catalog"`` or ``"events"``.
    limits
        The caps (default ``IngestSettings()``).

    Returns
    -------
    pa.Table
        The core columns, the object column (JSON text or null per row), ``_fields`` (the
        reasons, '' when the row passes) and the ``_*`` columns it had but ``_extra``.
    """
    limits = limits if limits is not None else IngestSettings()
    rules = RowRules(kind, limits)
    names = table.column_names
    extras = extra_names(names, kind)
    core = [c for c in core_columns(kind) if c in names]
    n = table.num_rows
    if kind == "events":
        problems = _core_sizes(table, core, limits.max_value_chars)
    else:
        problems = [[] for _ in range(n)]
    target = rules.target
    has_obj = target in names
    texts: list[str | None] = [None] * n
    if extras and not has_obj and EXTRA not in names:
        texts = _fixed_columns(table, extras, rules, core, problems)
    elif extras or has_obj or EXTRA in names:
        client = table.column(target).to_pylist() if has_obj else [None] * n
        packed = table.column(EXTRA).to_pylist() if EXTRA in names else [None] * n
        columns = [table.column(e).to_pylist() for e in extras]
        if kind == "events" and core:
            valid = [pc.is_valid(table.column(c)).to_numpy(zero_copy_only=False) for c in core]
            n_core = np.sum(valid, axis=0).tolist()
        else:
            n_core = [0] * n
        for i in range(n):
            row: list[tuple[str, Any]] = []
            if packed[i]:
                row.extend(json.loads(packed[i]).items())
            row.extend((e, col[i]) for e, col in zip(extras, columns, strict=True) if col[i])
            texts[i], why = rules.fold(client[i], row, n_core[i])
            problems[i].extend(why)
    keep = [c for c in names if c in core or (c.startswith("_") and c != EXTRA)]
    out = table.select(keep)
    for c in core_columns(kind):
        if c not in names:
            out = out.append_column(c, pa.nulls(n, pa.string()))
    out = out.append_column(target, pa.array(texts, pa.string()))
    return out.append_column(FIELDS, pa.array(["; ".join(p) for p in problems], pa.string()))
