"""The event WAL's plain parts: the accept report, and rows as it stores them.

``normalized`` fills a missing ``event_id`` (uuid4 hex) and ``ts`` (now, UTC) and turns
datetimes into ISO 8601 text. ``fast_reasons`` mirrors ``checks.EVENT_CHECKS`` (same names)
for the events the server generates itself, except ``item_in_catalog``, which needs the
catalog and runs when the WAL is compacted.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.ingest.checks import EVENT_CHECKS, EVENT_TYPES, ITEM_EVENT_TYPES
from moodboard.ingest.fields import FIELD_CHECKS
from moodboard.ingest.readers import BadLine

_TYPES = frozenset(EVENT_TYPES)
_ITEM_TYPES = frozenset(ITEM_EVENT_TYPES)
_PLAIN = (str, int, float, bool, type(None))
_NAMES = [*(c.name for c in EVENT_CHECKS), *FIELD_CHECKS, "parses"]
_CORE = frozenset((*C.EVENT_COLUMNS, C.PROPS))
_SPLIT = re.compile("; (?=(?:" + "|".join(map(re.escape, _NAMES)) + "): )")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _plain(v: Any) -> Any:
    if isinstance(v, _PLAIN):
        return v
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, (list, dict)):  # numpy scalars
        return v.item()
    return v


def normalized(row: Mapping[str, Any], now: str) -> dict[str, Any]:
    """A copy of an event row with its id and time filled in and JSON-ready values.

    Parameters
    ----------
    row
        The event as given (missing fields are left out or null).
    now
        The ISO 8601 time given to events without ``ts``.
    """
    rec = {k: _plain(v) for k, v in row.items()}
    if _missing(rec.get(C.EVENT_ID)):
        rec[C.EVENT_ID] = uuid.uuid4().hex
    if _missing(rec.get(C.TS)):
        rec[C.TS] = now
    for col in C.EVENT_REQUIRED:
        rec.setdefault(col, None)
    return rec


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _is_time(v: Any) -> bool:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return math.isfinite(v)
    if not isinstance(v, str):
        return False
    s = v.strip()
    try:
        datetime.fromisoformat(s)
    except ValueError:
        return _number(s) is not None
    return True


def _is_object(v: Any) -> bool:
    if isinstance(v, dict):
        return True
    if isinstance(v, str):
        try:
            return isinstance(json.loads(v), dict)
        except json.JSONDecodeError:
            return False
    return False


def fast_reasons(rec: Mapping[str, Any]) -> list[str]:
    """The named checks a normalized event fails, as ``"check_name: what to fix"``."""
    out = []
    if not _is_time(rec.get(C.TS)):
        out.append(f"ts_is_timestamp: ts {rec.get(C.TS)!r} is not a timestamp: use ISO 8601")
    if _missing(rec.get(C.USER_ID)):
        out.append("user_id_required: user_id is missing: use an anonymous id if you have none")
    typ = rec.get(C.TYPE)
    if typ not in _TYPES:
        out.append(f"type_known: type {typ!r} is not one of {', '.join(EVENT_TYPES)}")
    elif typ in _ITEM_TYPES and _missing(rec.get(C.ITEM_ID)):
        out.append(f"item_id_required: a {typ} event needs an item_id")
    pos = rec.get(C.POSITION)
    if pos is not None and ((p := _number(pos)) is None or round(p) < 1):
        out.append(f"position_at_least_1: position {pos!r} must be an integer >= 1 (1 = top)")
    prop = rec.get(C.PROPENSITY)
    if prop is not None and ((p := _number(prop)) is None or not 0 < p <= 1):
        out.append(f"propensity_in_0_1: propensity {prop!r} must be a probability in (0, 1]")
    arms = rec.get(C.ARMS)
    if arms is not None and not _is_object(arms):
        out.append(f'arms_is_object: arms {arms!r} must be a JSON object like {{"exp": "arm"}}')
    if typ == "search" and _missing(rec.get(C.QUERY)):
        out.append("search_has_query: a search event needs its query text")
    if typ == "impression" and _missing(rec.get(C.REQUEST_ID)):
        out.append("impression_has_request_id: an impression needs the request_id of its page")
    return out


def extra_key_count(rows: Sequence[Any]) -> int:
    """How many distinct extra field names (top-level extras and ``props`` keys) a batch has."""
    names: set[str] = set()
    for row in rows:
        if isinstance(row, Mapping):
            names.update(k for k in row if k not in _CORE)
            props = row.get(C.PROPS)
            if isinstance(props, Mapping):
                names.update(props)
    return len(names)


def unicode_problem(row: Mapping[str, Any]) -> str | None:
    """Why an event's text cannot be stored (a lone UTF-16 surrogate), or None."""
    try:
        json.dumps(row, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"the event holds text that is not valid Unicode ({e.object[e.start : e.end]!a}, "
            "a lone surrogate): send UTF-8 text"
        )
    except (TypeError, ValueError, RecursionError) as e:
        return f"the event cannot be written as JSON ({type(e).__name__}): send plain JSON values"
    return None


def incoming(
    rows: Sequence[Any], max_extra_keys: int
) -> tuple[list[tuple[int, dict[str, Any]]], list[BadLine]]:
    """A posted batch as ``(index, normalized event)`` pairs and the rows that cannot be
    events (not objects, or text no UTF-8 holds), numbered from 0.

    Raises
    ------
    InputError
        If the batch holds more distinct extra field names than ``max_extra_keys``.
    """
    n_keys = extra_key_count(rows)
    if n_keys > max_extra_keys:
        raise InputError(
            f"The batch holds {n_keys} distinct extra field names; the limit is {max_extra_keys} "
            "(ingest.max_extra_keys_per_batch). Send fewer distinct names, or split the batch."
        )
    now = datetime.now(UTC).isoformat()
    records: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadLine] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            text = json.dumps(row, default=str)
            bad.append(BadLine(i, text, "the event is not a JSON object: send {...} each"))
        elif why := unicode_problem(row):
            bad.append(BadLine(i, json.dumps(row, default=str), why))
        else:
            records.append((i, normalized(row, now)))
    return records, bad


def first_copies(
    records: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, Mapping[str, Any]], tuple[str, ...]]:
    """The first event of each ``event_id`` (in order), and the ids that repeat."""
    first: dict[str, Mapping[str, Any]] = {}
    repeated: dict[str, None] = {}
    for rec in records:
        eid = str(rec[C.EVENT_ID])
        if eid in first:
            repeated[eid] = None
        else:
            first[eid] = rec
    return first, tuple(repeated)


def split_reasons(reason: str) -> list[str]:
    """A ``_reason`` of the checks (``'a: ...; b: ...'``) as one string per failed check."""
    return _SPLIT.split(reason)


def encode(rec: Mapping[str, Any]) -> bytes:
    """One WAL line: the event as compact JSON (ASCII, so always valid UTF-8) and a newline."""
    return json.dumps(rec, separators=(",", ":"), default=str).encode() + b"\n"


@dataclass(frozen=True)
class AcceptReport:
    """What ``accept`` did with a batch: all of it stored, or none of it.

    Attributes
    ----------
    accepted
        How many distinct events were stored (the whole batch, or 0).
    event_ids
        Their ids, in the batch's order (generated ones included), each once.
    errors
        ``{"row": i, "reasons": ["check_name: what to fix", ...]}`` per failing row, ``i``
        being its 0-based index in the batch.
    quarantine_file
        Where the failing rows were written, with their reasons.
    duplicates
        The ids that the batch repeats (each stored and counted once).
    """

    accepted: int
    event_ids: tuple[str, ...] = ()
    errors: list[dict[str, Any]] = field(default_factory=list)
    quarantine_file: str | None = None
    duplicates: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the batch was stored."""
        return not self.errors

    def message(self) -> str:
        """A one-paragraph answer for the client saying what to fix."""
        if self.ok:
            return f"stored {self.accepted} events"
        shown = "; ".join(f"row {e['row']}: {' | '.join(e['reasons'])}" for e in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more rows)" if len(self.errors) > 5 else ""
        return (
            f"{len(self.errors)} events fail the checks, so none of the batch was stored. "
            f"Fix them and send the batch again: {shown}{more}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {
            "accepted": self.accepted,
            "event_ids": list(self.event_ids),
            "errors": self.errors,
            "quarantine_file": self.quarantine_file,
            "duplicates": list(self.duplicates),
        }
