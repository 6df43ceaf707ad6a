"""Readers for CSV, JSONL and Parquet that turn any file into batches of string columns.

Every non-empty line or row counts as read. A line that does not parse (a CSV row with the
wrong number of fields, a JSONL line that is not a JSON object) is kept as a ``BadLine`` with
its raw text, so ingestion can quarantine it instead of dropping it.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from moodboard.errors import InputError

ROW: str = "_row"  # the 1-based row number within the file, added to every batch
EXTRA: str = "_extra"  # a records batch's keys that are not columns, as JSON text per row

FORMATS = ("csv", "jsonl", "parquet")


@dataclass(frozen=True)
class BadLine:
    """A line that could not be parsed at all."""

    row: int
    text: str
    reason: str


@dataclass
class Batch:
    """A chunk of a file.

    Attributes
    ----------
    table
        The parsed rows: every column as a nullable string, plus ``_row``.
    original
        The same rows as the file had them (typed, for Parquet), for quarantine.
    bad
        Lines of this chunk that did not parse.
    records
        For JSONL, the parsed objects themselves (quarantine writes them back verbatim).
    """

    table: pa.Table
    original: pa.Table
    bad: list[BadLine] = field(default_factory=list)
    records: list[dict[str, Any]] | None = None

    def original_rows(self, positions: list[int]) -> list[dict[str, Any]]:
        """The rows at these positions as the file had them."""
        if self.records is not None:
            return [self.records[p] for p in positions]
        return self.original.take(pa.array(positions, pa.int64())).to_pylist()

    @property
    def read(self) -> int:
        """Rows and unparsable lines in this batch."""
        return self.table.num_rows + len(self.bad)


def detect_format(path: Path) -> str:
    """The format of a file from its name: csv, jsonl or parquet.

    Raises
    ------
    InputError
        If the extension is not one moodboard reads.
    """
    name = path.name.lower()
    for suffix, fmt in (
        (".csv", "csv"),
        (".tsv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return fmt
    raise InputError(f"Cannot tell the format of {path}: name it .csv, .tsv, .jsonl or .parquet.")


def _as_string_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    try:
        return col.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.chunked_array(
            [
                pa.array(
                    [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
                    type=pa.string(),
                )
            ]
        )


def _with_row(table: pa.Table, start: int) -> pa.Table:
    rows = pa.array(range(start, start + table.num_rows), type=pa.int64())
    return _drop_private(table).append_column(ROW, rows)


def _drop_private(table: pa.Table) -> pa.Table:
    """Columns named ``_*`` are moodboard's own (quarantine metadata): never data."""
    return table.select([n for n in table.column_names if not n.startswith("_")])


def _stringify(table: pa.Table) -> pa.Table:
    return pa.table({n: _as_string_column(table.column(n)) for n in table.column_names})


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[Batch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path} is not a readable Parquet file: {e}") from None
    start = 1
    for rb in pf.iter_batches(batch_size=chunk_rows):
        original = pa.Table.from_batches([rb])
        yield Batch(_with_row(_stringify(original), start), original)
        start += original.num_rows


def _json_cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    return json.dumps(v)


def records_batch(
    rows: list[tuple[int, dict[str, Any]]],
    bad: list[BadLine] | None = None,
    keep: Collection[str] | None = None,
    drop_private: bool = True,
) -> Batch:
    """A batch of string columns from parsed JSON objects (as a JSONL file gives them).

    Parameters
    ----------
    rows
        ``(row number, object)`` pairs; values that are not strings become their JSON text,
        keys starting with ``_`` are dropped.
    bad
        Lines that did not parse, kept for quarantine.
    keep
        The keys that become columns; every other key of a row goes, verbatim, into that
        row's ``_extra`` (a JSON object text, null when it has none). Default: every key
        becomes a column. Only keys some row has become columns.
    drop_private
        Drop the keys starting with ``_`` (moodboard's own, as in quarantine files); when
        False they go to ``_extra``, where the field checks refuse them.
    """
    names: dict[str, None] = {}
    for _, obj in rows:
        names.update(dict.fromkeys(obj))
    wanted = set(names if keep is None else keep)
    kept = [n for n in names if n in wanted and not n.startswith("_")]
    cols = {n: pa.array([_json_cell(o.get(n)) for _, o in rows], type=pa.string()) for n in kept}
    wanted = set(kept)
    extra: list[str | None] = []
    for _, o in rows:
        other = {
            k: v
            for k, v in o.items()
            if k not in wanted and not (drop_private and k.startswith("_"))
        }
        extra.append(json.dumps(other, ensure_ascii=False) if other else None)
    if any(e is not None for e in extra):
        cols[EXTRA] = pa.array(extra, type=pa.string())
    rownums = pa.array([r for r, _ in rows], type=pa.int64())
    table = pa.Table.from_arrays([*cols.values(), rownums], names=[*cols, ROW])
    return Batch(table, table, list(bad or []), [o for _, o in rows])


def _read_jsonl(
    path: Path, chunk_rows: int, keep: Collection[str] | None = None
) -> Iterator[Batch]:
    rows: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadLine] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                bad.append(BadLine(n, text, f"line is not valid JSON ({e.msg}): fix the syntax"))
                continue
            if not isinstance(obj, dict):
                bad.append(BadLine(n, text, "line is not a JSON object: write one {...} a line"))
                continue
            rows.append((n, obj))
            if len(rows) >= chunk_rows:
                yield records_batch(rows, bad, keep)
                rows, bad = [], []
    if rows or bad:
        yield records_batch(rows, bad, keep)


def _csv_header(path: Path, delimiter: str, encoding: str) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding=encoding, errors="replace", newline="") as fh:
        for row in csv.reader(fh, delimiter=delimiter):
            if any(c.strip() for c in row):
                return [c.strip() for c in row]
    raise InputError(f"{path} is empty: a CSV file needs a header line naming its columns.")


def _read_csv(path: Path, chunk_rows: int, encoding: str) -> Iterator[Batch]:
    delimiter = "\t" if ".tsv" in path.name.lower() else ","
    header = _csv_header(path, delimiter, encoding)
    if len(set(header)) != len(header):
        raise InputError(f"{path} has repeated column names in its header: {header}.")
    bad: list[BadLine] = []
    bad_rows: set[int] = set()

    def on_invalid(row: pacsv.InvalidRow) -> str:
        number = max(int(row.number or 1) - 1, 1)  # pyarrow counts the header line
        bad_rows.add(number)
        bad.append(
            BadLine(
                number,
                row.text,
                f"row has {row.actual_columns} fields but the header has {row.expected_columns}: "
                "quote values that contain the delimiter",
            )
        )
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=header,
            skip_rows=1,
            encoding=encoding,
            use_threads=False,
            block_size=1 << 22,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=True
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=True,
        ),
    )
    next_row = 1

    def numbered(table: pa.Table) -> pa.Table:
        nonlocal next_row
        numbers = []
        for _ in range(table.num_rows):
            while next_row in bad_rows:
                next_row += 1
            numbers.append(next_row)
            next_row += 1
        return _drop_private(table).append_column(ROW, pa.array(numbers, type=pa.int64()))

    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for rb in reader:
        pending.append(rb)
        pending_rows += rb.num_rows
        if pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending)
            yield Batch(numbered(table), table, bad)
            pending, pending_rows, bad = [], 0, []
    if pending or bad:
        table = (
            pa.Table.from_batches(pending)
            if pending
            else pa.table({h: pa.array([], pa.string()) for h in header})
        )
        yield Batch(numbered(table), table, list(bad))


def read_batches(
    path: Path,
    chunk_rows: int = 100_000,
    encoding: str = "utf-8",
    keep: Collection[str] | None = None,
) -> Iterator[Batch]:
    """Read a CSV, JSONL or Parquet file in batches of string columns.

    Parameters
    ----------
    path
        The file; its format comes from its extension.
    chunk_rows
        Rows per batch (each batch is committed on its own by ingestion).
    encoding
        Text encoding of CSV files.
    keep
        For JSONL, the keys that become columns (the rest go to ``_extra``, see
        ``records_batch``); default every key.

    Raises
    ------
    InputError
        If the file is missing, not a file, or not a table in a known format.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: check the path.")
    if not path.is_file():
        raise InputError(f"{path} is not a file: name a .csv, .jsonl or .parquet file.")
    fmt = detect_format(path)
    if fmt == "parquet":
        return _read_parquet(path, chunk_rows)
    if fmt == "jsonl":
        return _read_jsonl(path, chunk_rows, keep)
    return _read_csv(path, chunk_rows, encoding)
