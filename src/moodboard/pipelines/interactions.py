"""Weighted interactions from the event log, with bots and abusers removed (an Ibis job).

The job runs unchanged on DuckDB and on Spark and returns the same rows on both. Three rules make
that so, and the other jobs of this package follow them too:

- time arithmetic is done on integer microseconds since the epoch (:func:`epoch_us`), never on
  ``epoch_seconds`` (fractional on DuckDB, truncated on Spark);
- every window and every list is ordered by a total key ending in ``event_id``;
- results are fetched, cast to a declared schema and sorted by a unique key (:func:`fetch`).

Timestamps are naive UTC, as the workspace stores them (Spark reads them as ``TIMESTAMP_NTZ``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from moodboard.data import columns as C
from moodboard.data.records import INTERACTION_WEIGHTS, EventType

_log = logging.getLogger(__name__)

#: Output columns.
WEIGHT: Final = "weight"
US: Final = "ts_us"
N_ACTIONS: Final = "n_actions"
PEAK_MINUTE: Final = "peak_per_minute"
PEAK_DAY: Final = "peak_per_day"
REASON: Final = "reason"

#: The event types an interaction may have (impressions, hides and searches are not kept).
KEPT_TYPES: Final = (
    EventType.CLICK.value,
    EventType.SAVE.value,
    EventType.ADD_TO_CART.value,
    EventType.PURCHASE.value,
)
_EPOCH = ibis.timestamp("1970-01-01 00:00:00")
_MINUTE_US = 60_000_000

INTERACTIONS_SCHEMA: Final = pa.schema(
    [
        (C.EVENT_ID, pa.string()),
        (C.TS, pa.timestamp("us")),
        (C.USER_ID, pa.string()),
        (C.ITEM_ID, pa.string()),
        (C.TYPE, pa.string()),
        (WEIGHT, pa.float64()),
        (C.REQUEST_ID, pa.string()),
        (C.BOARD_ID, pa.string()),
    ]
)
INTERACTIONS_KEY: Final = (C.USER_ID, C.TS, C.EVENT_ID)
REMOVED_SCHEMA: Final = pa.schema(
    [
        (C.USER_ID, pa.string()),
        (N_ACTIONS, pa.int64()),
        (PEAK_MINUTE, pa.int64()),
        (PEAK_DAY, pa.int64()),
        (REASON, pa.string()),
    ]
)


class InteractionsConfig(BaseModel):
    """What an interaction is and who is not human.

    Parameters
    ----------
    weights
        Action weight per kept event type (a subset of click, save, add_to_cart, purchase);
        other types are dropped.
    max_per_minute
        A user with more actions than this within any 60 seconds is removed.
    max_per_day
        A user with more actions than this on any UTC day is removed.
    """

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(default_factory=lambda: dict(INTERACTION_WEIGHTS))
    max_per_minute: int = Field(default=30, ge=1)
    max_per_day: int = Field(default=1_000, ge=1)

    @field_validator("weights")
    @classmethod
    def _known_positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(KEPT_TYPES))
        if bad or not v:
            raise ValueError(
                f"The 'weights' parameter of InteractionsConfig must name some of "
                f"{list(KEPT_TYPES)}. Got {sorted(v)} instead."
            )
        if any(w <= 0 for w in v.values()):
            raise ValueError(
                f"The 'weights' parameter of InteractionsConfig must be > 0. Got {v} instead."
            )
        return v


@dataclass(frozen=True)
class Interactions:
    """The result of :func:`interactions_table`: kept interactions and the removed users."""

    interactions: pa.Table
    removed_users: pa.Table


def epoch_us(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Microseconds since 1970-01-01 (UTC) as an exact int64 on every backend."""
    return ts.delta(_EPOCH, unit="microsecond").cast("int64")


def double(x: float) -> ir.FloatingValue:
    """A float64 constant that is a DOUBLE on every engine.

    Ibis writes float literals as ``1.5``, which DuckDB and Spark both read as a DECIMAL, and the
    two engines type decimal arithmetic differently; a cast from the exact ``repr`` is a DOUBLE.
    """
    return ibis.literal(repr(float(x))).cast("float64")


def datetime_us(when: datetime) -> int:
    """Exact microseconds since the epoch of a UTC datetime (a naive one is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def fetch(expr: ir.Table, schema: pa.Schema, key: Sequence[str]) -> pa.Table:
    """Execute on the expression's backend, cast to ``schema`` and sort by ``key`` (unique)."""
    t = expr.to_pyarrow().select(schema.names).cast(schema)
    return t.sort_by([(k, "ascending") for k in key]).combine_chunks()


def first_copies(events: ir.Table, columns: Sequence[str] = ()) -> ir.Table:
    """One copy per ``event_id``: the first by (ts, user_id, type, item_id, request_id, board_id).

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    columns
        Columns kept besides ``event_id, ts, user_id, item_id, type``.

    Returns
    -------
    ir.Table
        The kept columns; events without an ``event_id`` or a ``ts`` are dropped.
    """
    keep = [C.EVENT_ID, C.TS, C.USER_ID, C.ITEM_ID, C.TYPE]
    keep += [c for c in columns if c not in keep]
    e = events.filter(events[C.EVENT_ID].notnull() & events[C.TS].notnull())
    first = ibis.window(
        group_by=e[C.EVENT_ID],
        order_by=[e[C.TS], e[C.USER_ID].fill_null(""), e[C.TYPE].fill_null("")]
        + [e[c].fill_null("") for c in (C.ITEM_ID, C.REQUEST_ID, C.BOARD_ID)],
    )
    e = e.mutate(_dup=ibis.row_number().over(first))
    return e.filter(e._dup == 0).select(*keep)


def actions(events: ir.Table, config: InteractionsConfig | None = None) -> ir.Table:
    """Deduplicated, weighted actions of every user (bots included).

    Duplicates of an ``event_id`` keep the copy first by (ts, user_id, type, item_id). Only
    events of a weighted type, with a user and an item, are kept.

    Returns
    -------
    ir.Table
        ``INTERACTIONS_SCHEMA`` columns plus ``ts_us`` (microseconds since the epoch).
    """
    cfg = config or InteractionsConfig()
    e = first_copies(events, (C.REQUEST_ID, C.BOARD_ID))
    e = e.filter(e[C.USER_ID].notnull() & e[C.ITEM_ID].notnull())
    e = e.filter(e[C.TYPE].isin(sorted(cfg.weights)))
    weight = ibis.cases(*((e[C.TYPE] == t, double(w)) for t, w in sorted(cfg.weights.items())))
    e = e.mutate(**{WEIGHT: weight})
    return e.select(
        *INTERACTIONS_SCHEMA.names,
        **{US: epoch_us(e[C.TS])},
    )


def one_per_order(t: ir.Table, us: str = US) -> ir.Table:
    """``t`` with the purchases of one user at one instant kept once (the first by
    ``event_id``): the lines of one order, which a store logs with the order's time, are one
    checkout, not a burst of actions. Other events are all kept.

    Parameters
    ----------
    t
        Events with ``user_id``, ``type``, ``event_id`` (unique) and the time in column ``us``.
    us
        The column holding the time (integer microseconds).
    """
    w = ibis.window(group_by=[t[C.USER_ID], t[C.TYPE], t[us]], order_by=t[C.EVENT_ID])
    t = t.mutate(_line=ibis.row_number().over(w))
    return t.filter((t[C.TYPE] != EventType.PURCHASE.value) | (t._line == 0)).drop("_line")


def action_rates(acts: ir.Table) -> ir.Table:
    """Each user's action count and peak actions within 60 seconds and on one UTC day, the
    lines of one order counting as one action (:func:`one_per_order`).

    Parameters
    ----------
    acts
        Actions with ``type`` and ``ts_us`` (:func:`actions`).

    Returns
    -------
    ir.Table
        ``user_id, n_actions, peak_per_minute, peak_per_day`` (int64), one row per user.
    """
    acts = one_per_order(acts)
    minute = ibis.window(group_by=acts[C.USER_ID], order_by=acts[US], range=(-(_MINUTE_US - 1), 0))
    rated = acts.mutate(_in_minute=acts[C.EVENT_ID].count().over(minute))
    per_day = rated.group_by(C.USER_ID, _day=rated[C.TS].date()).aggregate(
        _n=rated[C.EVENT_ID].count(), _peak_minute=rated._in_minute.max()
    )
    return per_day.group_by(C.USER_ID).aggregate(
        **{
            N_ACTIONS: per_day._n.sum().cast("int64"),
            PEAK_MINUTE: per_day._peak_minute.max().cast("int64"),
            PEAK_DAY: per_day._n.max().cast("int64"),
        }
    )


def removed_users(acts: ir.Table, config: InteractionsConfig | None = None) -> ir.Table:
    """Users whose action rates are not human, from :func:`actions`.

    Returns
    -------
    ir.Table
        ``REMOVED_SCHEMA``: the user, their action count, their peak actions within 60 seconds and
        on one UTC day, and the reason (``per_minute``, ``per_day`` or ``per_minute+per_day``).
    """
    cfg = config or InteractionsConfig()
    users = action_rates(acts)
    fast = users[PEAK_MINUTE] > cfg.max_per_minute
    many = users[PEAK_DAY] > cfg.max_per_day
    reason = ibis.cases((fast & many, "per_minute+per_day"), (fast, "per_minute"), else_="per_day")
    return users.filter(fast | many).mutate(**{REASON: reason})


def interactions(
    events: ir.Table, config: InteractionsConfig | None = None, *, keep_us: bool = False
) -> ir.Table:
    """The interactions of human users: :func:`actions` minus :func:`removed_users`.

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    config
        Weights and rate limits; default ``InteractionsConfig()``.
    keep_us
        Keep the ``ts_us`` column (microseconds since the epoch), which the other jobs reuse.

    Returns
    -------
    ir.Table
        ``INTERACTIONS_SCHEMA`` columns (plus ``ts_us`` when asked).
    """
    acts = actions(events, config)
    kept = acts.anti_join(removed_users(acts, config).select(C.USER_ID), C.USER_ID)
    return kept if keep_us else kept.drop(US)


def interactions_table(
    backend: ibis.BaseBackend, events_glob: str, config: InteractionsConfig | None = None
) -> Interactions:
    """Run :func:`interactions` and :func:`removed_users` over Parquet event parts.

    Returns
    -------
    Interactions
        Both tables, sorted by ``INTERACTIONS_KEY`` and by user.
    """
    events = backend.read_parquet(events_glob)
    removed = fetch(removed_users(actions(events, config), config), REMOVED_SCHEMA, (C.USER_ID,))
    if removed.num_rows:
        _log.info("removed %d users with inhuman action rates", removed.num_rows)
    kept = fetch(interactions(events, config), INTERACTIONS_SCHEMA, INTERACTIONS_KEY)
    return Interactions(kept, removed)
