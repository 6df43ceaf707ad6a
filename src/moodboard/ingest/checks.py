"""Named row checks, written once as SQL over a batch of string columns.

Each check has a name, a SQL condition that is true when a row FAILS it, and a reason that
says what to fix. ``normalize_sql`` turns a batch of strings into typed columns, then every
check runs as a vectorized expression in DuckDB, so validation keeps up with ingestion.
"""

from __future__ import annotations

from dataclasses import dataclass

from moodboard.data import columns as C
from moodboard.data.records import EventType
from moodboard.ingest.fields import FIELDS, field_checks

ITEM_EVENT_TYPES = tuple(t.value for t in EventType if t.needs_item)
TS_MIN = "_ts_min"  # helper columns of the allowed event time range (see ts_bounds_sql)
TS_MAX = "_ts_max"
EVENT_TYPES = tuple(t.value for t in EventType)


@dataclass(frozen=True)
class Check:
    """A named check: ``fails`` is a SQL condition over the normalized row."""

    name: str
    fails: str
    reason: str

    def reason_sql(self) -> str:
        """A SQL expression giving ``'name: reason'`` for failing rows, NULL otherwise."""
        return (
            f"CASE WHEN coalesce(({self.fails}), false) THEN '{self.name}: ' || {self.reason} END"
        )


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _quoted(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


#: Text made of whitespace alone (tabs, newlines, no-break spaces included) is no text.
_BLANK = r"'[[:space:]\p{Z}]*'"


def _blank_null(col: str) -> str:
    q = _quoted(col)
    return f"CASE WHEN regexp_full_match({q}, {_BLANK}) THEN NULL ELSE {q} END"


def _ts(col: str) -> str:
    q = _quoted(col)
    num = f"TRY_CAST(trim({q}) AS DOUBLE)"
    return (
        f"CASE WHEN {q} IS NULL OR regexp_full_match({q}, {_BLANK}) THEN NULL "
        f"WHEN regexp_full_match(trim({q}), '-?[0-9]+(\\.[0-9]+)?') THEN "
        f"  CASE WHEN abs({num}) > 1e15 THEN NULL "
        f"  WHEN abs({num}) > 1e11 THEN make_timestamp(TRY_CAST({num} * 1000 AS BIGINT)) "
        f"  ELSE make_timestamp(TRY_CAST({num} * 1000000 AS BIGINT)) END "
        f"ELSE timezone('UTC', TRY_CAST(trim({q}) AS TIMESTAMPTZ)) END"
    )


def _raw(col: str) -> str:
    return f"_raw_{col}"


def _show(col: str) -> str:
    return f"'''' || coalesce({_raw(col)}, '') || ''''"


CATALOG_CHECKS: tuple[Check, ...] = (
    Check(
        "id_required", f"{C.ID} IS NULL", _lit("id is missing or blank: give every product an id")
    ),
    Check(
        "title_required",
        f"{C.TITLE} IS NULL",
        _lit("title is missing or blank: give every product a title"),
    ),
    Check(
        "price_is_number",
        f"{_raw(C.PRICE)} IS NOT NULL AND trim({_raw(C.PRICE)}) <> '' AND "
        f"({C.PRICE} IS NULL OR NOT isfinite({C.PRICE}))",
        f"'price ' || {_show(C.PRICE)} || ' is not a number: write it like 19.99'",
    ),
    Check(
        "price_not_negative",
        f"{C.PRICE} < 0",
        f"'price ' || {_show(C.PRICE)} || ' is negative: prices must be >= 0'",
    ),
    Check(
        "currency_code",
        f"{C.CURRENCY} IS NOT NULL AND NOT regexp_full_match({C.CURRENCY}, '[A-Z]{{3}}')",
        f"'currency ' || {_show(C.CURRENCY)} || ' is not an ISO 4217 code such as USD'",
    ),
    Check(
        "created_at_is_timestamp",
        f"{_raw(C.CREATED_AT)} IS NOT NULL AND {C.CREATED_AT} IS NULL",
        f"'created_at ' || {_show(C.CREATED_AT)} || ' is not a timestamp: use ISO 8601'",
    ),
    Check(
        "image_readable",
        f"{C.IMAGE} IS NOT NULL AND _image_problem IS NOT NULL",
        f"'image ' || {_show(C.IMAGE)} || ' ' || _image_problem",
    ),
)

EVENT_CHECKS: tuple[Check, ...] = (
    Check(
        "event_id_required",
        f"{C.EVENT_ID} IS NULL",
        _lit("event_id is missing or blank: give every event a unique id"),
    ),
    Check(
        "ts_required",
        f"{_raw(C.TS)} IS NULL OR regexp_full_match({_raw(C.TS)}, {_BLANK})",
        _lit("ts is missing: give every event a timestamp"),
    ),
    Check(
        "ts_is_timestamp",
        f"{_raw(C.TS)} IS NOT NULL AND NOT regexp_full_match({_raw(C.TS)}, {_BLANK}) "
        f"AND {C.TS} IS NULL",
        f"'ts ' || {_show(C.TS)} || ' is not a timestamp: use ISO 8601 "
        "(2026-01-05T10:00:00Z) or epoch seconds'",
    ),
    Check(
        "ts_not_in_future",
        f"{C.TS} > {TS_MAX}",
        f"'ts ' || {_show(C.TS)} || ' is later than ' || strftime({TS_MAX}, '%Y-%m-%dT%H:%M:%SZ')"
        " || ' (now + ingest.max_clock_skew_s): fix the clock or the date'",
    ),
    Check(
        "ts_not_before_min",
        f"{C.TS} < {TS_MIN}",
        f"'ts ' || {_show(C.TS)} || ' is earlier than ' || strftime({TS_MIN}, "
        "'%Y-%m-%dT%H:%M:%SZ') || ' (ingest.min_event_ts): fix the date'",
    ),
    Check(
        "user_id_required",
        f"{C.USER_ID} IS NULL",
        _lit(
            "user_id is missing or blank: use an anonymous id such as a session id if you have "
            "no user"
        ),
    ),
    Check(
        "type_known",
        f"{C.TYPE} IS NULL OR {C.TYPE} NOT IN ({', '.join(map(_lit, EVENT_TYPES))})",
        f"'type ' || {_show(C.TYPE)} || ' is not one of {', '.join(EVENT_TYPES)}'",
    ),
    Check(
        "item_id_required",
        f"{C.TYPE} IN ({', '.join(map(_lit, ITEM_EVENT_TYPES))}) AND {C.ITEM_ID} IS NULL",
        f"'a ' || {C.TYPE} || ' event needs an item_id'",
    ),
    Check(
        "item_in_catalog",
        f"{C.ITEM_ID} IS NOT NULL AND NOT _item_known",
        f"'item_id ' || {_show(C.ITEM_ID)} || ' is not in the catalog: ingest the catalog "
        "first, or fix the id'",
    ),
    Check(
        "position_at_least_1",
        f"{_raw(C.POSITION)} IS NOT NULL AND ({C.POSITION} IS NULL OR {C.POSITION} < 1)",
        f"'position ' || {_show(C.POSITION)} || ' must be an integer >= 1 (1 = top)'",
    ),
    Check(
        "propensity_in_0_1",
        f"{_raw(C.PROPENSITY)} IS NOT NULL AND ({C.PROPENSITY} IS NULL OR NOT "
        f"({C.PROPENSITY} > 0 AND {C.PROPENSITY} <= 1))",
        f"'propensity ' || {_show(C.PROPENSITY)} || ' must be a probability in (0, 1]'",
    ),
    Check(
        "arms_is_object",
        f"{C.ARMS} IS NOT NULL AND coalesce(json_type(TRY_CAST({C.ARMS} AS JSON)), '') <> 'OBJECT'",
        f"'arms ' || {_show(C.ARMS)} || ' must be a JSON object like {{\"exp\": \"arm\"}}'",
    ),
    Check(
        "search_has_query",
        f"{C.TYPE} = 'search' AND {C.QUERY} IS NULL",
        _lit("a search event needs its query text"),
    ),
    Check(
        "impression_has_request_id",
        f"{C.TYPE} = 'impression' AND {C.REQUEST_ID} IS NULL",
        _lit("an impression needs the request_id of the page it was shown on"),
    ),
)

CHECKS: dict[str, tuple[Check, ...]] = {"catalog": CATALOG_CHECKS, "events": EVENT_CHECKS}


def ts_bounds_sql() -> list[str]:
    """The helper columns of the event time bounds, from the parameters ``$ts_min`` and
    ``$ts_max`` (naive UTC timestamps)."""
    return [f"CAST($ts_min AS TIMESTAMP) AS {TS_MIN}", f"CAST($ts_max AS TIMESTAMP) AS {TS_MAX}"]


def _normalized_columns(kind: str) -> dict[str, str]:
    if kind == "catalog":
        return {
            C.ID: _blank_null(C.ID),
            C.TITLE: _blank_null(C.TITLE),
            C.DESCRIPTION: _blank_null(C.DESCRIPTION),
            C.BRAND: _blank_null(C.BRAND),
            C.CATEGORY: _blank_null(C.CATEGORY),
            C.PRICE: f"TRY_CAST(trim({_quoted(C.PRICE)}) AS DOUBLE)",
            C.CURRENCY: _blank_null(C.CURRENCY),
            C.IMAGE: _blank_null(C.IMAGE),
            C.CREATED_AT: _ts(C.CREATED_AT),
        }
    return {
        C.EVENT_ID: _blank_null(C.EVENT_ID),
        C.TS: _ts(C.TS),
        C.USER_ID: _blank_null(C.USER_ID),
        C.TYPE: _blank_null(C.TYPE),
        C.ITEM_ID: _blank_null(C.ITEM_ID),
        C.QUERY: _blank_null(C.QUERY),
        C.SURFACE: _blank_null(C.SURFACE),
        C.POSITION: f"TRY_CAST(trim({_quoted(C.POSITION)}) AS INTEGER)",
        C.REQUEST_ID: _blank_null(C.REQUEST_ID),
        C.BOARD_ID: _blank_null(C.BOARD_ID),
        C.ARMS: _blank_null(C.ARMS),
        C.PROPENSITY: f"TRY_CAST(trim({_quoted(C.PROPENSITY)}) AS DOUBLE)",
    }


def checked_sql(kind: str, source: str, extras: list[str], helper_columns: list[str]) -> str:
    """SQL that normalizes a batch and adds ``_reason`` ('' when every check passes).

    Parameters
    ----------
    kind
        ``"catalog"`` or ``"events"``.
    source
        The relation holding the batch (all canonical columns present, as strings).
    extras
        Further columns to carry through untouched (the object column; ``_fields``, the
        reasons of the field checks, is always carried and joins ``_reason``).
    helper_columns
        Columns computed before the checks (``_image_problem``, ``_item_known``, the ts bounds).
    """
    norm = _normalized_columns(kind)
    raws = [f"{_quoted(c)} AS {_raw(c)}" for c in norm]
    inner = ", ".join(
        [
            "_row",
            *(f"{e} AS {c}" for c, e in norm.items()),
            *raws,
            *(_quoted(x) for x in extras),
            FIELDS,
            *helper_columns,
        ]
    )
    reasons = ", ".join([f"nullif({FIELDS}, '')", *(ch.reason_sql() for ch in CHECKS[kind])])
    return f"SELECT *, concat_ws('; ', {reasons}) AS _reason FROM (SELECT {inner} FROM {source})"


def check_counts_sql(kind: str, relation: str) -> str:
    """SQL counting the failures of each check over a checked relation, with example rows."""
    parts = [
        f"SELECT {_lit(ch.name)} AS check_name, count(*) FILTER (WHERE coalesce(({ch.fails}), "
        f"false)) AS failed, list(_row ORDER BY _row) FILTER (WHERE coalesce(({ch.fails}), "
        f"false))[1:5] AS examples FROM {relation}"
        for ch in CHECKS[kind]
    ]
    fields = [
        f"SELECT {_lit(name)}, count(*) FILTER (WHERE contains({FIELDS}, {_lit(name + ': ')})), "
        f"list(_row ORDER BY _row) FILTER (WHERE contains({FIELDS}, {_lit(name + ': ')}))[1:5] "
        f"FROM {relation}"
        for name in field_checks(kind)
    ]
    return " UNION ALL ".join([*parts, *fields])
