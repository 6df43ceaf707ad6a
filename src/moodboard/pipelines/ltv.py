"""The long-term value label: a user's engagement over the days after a page (an Ibis job).

For every (user, day) on which the user was shown a page (an ``impression``), the label is the
value of the user's actions on the next ``horizon_days`` UTC days, ``day + 1`` through
``day + horizon_days``: each action counts its weight (``weights``, e.g. a click 1 and a
purchase 3), every copy of an event once (``first_copies``). The page's own day is left out:
what a page earns the same day is the short-term heads' label (``pipelines.labels``), and the
value model is to predict what comes back after it.

A (user, day) whose window ends after the log's last day is censored (its future is not yet
logged): ``future_value`` leaves it out, so a log shorter than ``horizon_days + 1`` days gives
no rows. Days are counted from the epoch in UTC (``ts // 86400 s``), on DuckDB and Spark alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.data.records import EventType
from moodboard.pipelines.interactions import double, epoch_us, fetch, first_copies

_log = logging.getLogger(__name__)

#: The day column (days since the epoch, UTC) and the label column.
DAY: Final = "day"
FUTURE_VALUE: Final = "future_value"
#: The rows ``future_value`` returns.
FUTURE_SCHEMA: Final = pa.schema(
    [(C.USER_ID, pa.string()), (DAY, pa.int64()), (FUTURE_VALUE, pa.float64())]
)
_DAY_US: Final = 86_400_000_000


def event_day(ts: ir.TimestampValue) -> ir.IntegerValue:
    """The UTC day of a time, as days since the epoch."""
    return (epoch_us(ts) // _DAY_US).cast("int64")


def future_value(
    events: ir.Table,
    horizon_days: int,
    weights: Mapping[str, float],
    *,
    exclude_users: ir.Table | None = None,
) -> ir.Table:
    """Per (user, day with an impression), the value of the user's actions on the next
    ``horizon_days`` days (module docstring); censored days are left out.

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    horizon_days
        The days after the page that count (>= 1).
    weights
        Action type -> its value (types not named count 0).
    exclude_users
        Users left out entirely (the bots).

    Raises
    ------
    ValueError
        If ``horizon_days`` < 1 or no weight is given.
    """
    if horizon_days < 1 or not weights:
        raise ValueError(
            f"future_value needs horizon_days >= 1 and some weights. Got {horizon_days} and "
            f"{dict(weights)} instead."
        )
    e = first_copies(events)
    if exclude_users is not None:
        e = e.anti_join(exclude_users, C.USER_ID)
    e = e.filter(e[C.USER_ID].notnull()).mutate(**{DAY: event_day(e[C.TS])})
    last = e[DAY].max().as_scalar()
    shown = e.filter(e[C.TYPE] == EventType.IMPRESSION.value).select(C.USER_ID, DAY).distinct()
    shown = shown.filter(shown[DAY] + horizon_days <= last)
    value = ibis.literal(0.0).cast("float64")
    for typ, w in weights.items():
        value = value + ibis.ifelse(e[C.TYPE] == typ, double(w), double(0.0))
    acts = e.filter(e[C.TYPE].isin(list(weights)))
    daily = (
        acts.mutate(_v=value)
        .group_by([C.USER_ID, DAY])
        .aggregate(_value=lambda t: t._v.sum())
        .rename(_user=C.USER_ID, _day=DAY)
    )
    joined = shown.left_join(
        daily,
        [
            shown[C.USER_ID] == daily._user,
            daily._day > shown[DAY],
            daily._day <= shown[DAY] + horizon_days,
        ],
    )
    return joined.group_by([C.USER_ID, DAY]).aggregate(
        **{FUTURE_VALUE: lambda t: t._value.sum().fill_null(0.0).cast("float64")}
    )


def future_value_table(
    events: ir.Table,
    horizon_days: int,
    weights: Mapping[str, float],
    *,
    exclude_users: ir.Table | None = None,
) -> pa.Table:
    """:func:`future_value` executed on its backend (``FUTURE_SCHEMA``, sorted by user, day)."""
    expr = future_value(events, horizon_days, weights, exclude_users=exclude_users)
    t = fetch(expr, FUTURE_SCHEMA, (C.USER_ID, DAY))
    _log.info("%d (user, day) long-term labels over %d days", t.num_rows, horizon_days)
    return t
