"""Item popularity from the event log: action-weighted, time-decayed counts (an Ibis job)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.pipelines.interactions import datetime_us, double, epoch_us


def popularity(
    events: ir.Table,
    weights: Mapping[str, float],
    half_life_days: float = 7.0,
    now: datetime | None = None,
    *,
    exclude_users: ir.Table | None = None,
) -> ir.Table:
    """``item_id, score``: sum of action weights, halved every ``half_life_days`` before the
    reference time: the newest event of the log, or ``now`` (default: the current time) if
    that is earlier, so that one event dated in the future cannot age every real one away.
    Events after the reference count as of age 0.

    Exact on DuckDB and Spark alike: times are integer microseconds, constants are DOUBLEs, and
    each contribution is rounded to 1e-9 and summed as an integer (a float sum's value would
    depend on the order an engine adds in).

    ``exclude_users``: a table with a ``user_id`` column (e.g. ``Bots.exclude()``) whose
    events are left out, reference time included.
    """
    if exclude_users is not None:
        events = events.anti_join(exclude_users.select(C.USER_ID), C.USER_ID)
    limit = ibis.literal(datetime_us(now or datetime.now(UTC)), "int64")
    newest = events.aggregate(_newest=ibis.least(epoch_us(events[C.TS].max()), limit))
    w = ibis.cases(
        *((events[C.TYPE] == t, double(v)) for t, v in weights.items()), else_=double(0.0)
    )
    aged = (
        events.filter(events[C.ITEM_ID].notnull())
        .cross_join(newest)
        .mutate(weight=w, age_us=lambda t: ibis.greatest(t._newest - epoch_us(t[C.TS]), 0))
    )
    rate = double(math.log(2) / (half_life_days * 86_400e6))
    nano = ((aged.weight * (-(rate * aged.age_us.cast("float64"))).exp()) * double(1e9)).round()
    units = aged.mutate(units=nano.cast("int64"))
    out = units.group_by(C.ITEM_ID).aggregate(units=units.units.sum())
    return out.select(C.ITEM_ID, score=out.units.cast("float64") / double(1e9))


def popularity_table(
    backend: ibis.BaseBackend,
    events_glob: str,
    weights: Mapping[str, float],
    half_life_days: float = 7.0,
    now: datetime | None = None,
    *,
    exclude_users: ir.Table | None = None,
) -> pa.Table:
    """Run ``popularity`` over Parquet event parts on a backend (``exclude_users``' events left
    out)."""
    events = backend.read_parquet(events_glob)
    out = popularity(events, weights, half_life_days, now, exclude_users=exclude_users)
    return out.order_by(C.ITEM_ID).to_pyarrow()
