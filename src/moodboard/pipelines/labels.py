"""Graded labels from engagement: each impression joined to the actions on it (an Ibis job).

An impression is an ``impression`` event with a ``request_id`` and an ``item_id``; the actions
on it are the click, save, add_to_cart, purchase and hide events of the same ``request_id``
and ``item_id`` logged at or after the impression and at most ``window_minutes`` later (point
in time: an action before the impression, or past its window, labels nothing; an action of
another request labels nothing). The label is a grade LightGBM accepts (>= 0):

=====  =====================================================================================
grade  when
=====  =====================================================================================
0      hidden, with no save, add_to_cart or purchase in the window (a hide beats a click: a
       click next to a hide is a disappointment, not a success)
1      shown, and nothing else happened in the window (or only actions of other requests)
2      clicked
3      saved
4      added to the cart
5      purchased
=====  =====================================================================================

The strongest action wins, and save, add_to_cart and purchase win over a hide (they are
deliberate acts). The label window defaults to 30 minutes: a shopper's actions on a page
arrive within seconds to minutes, and a purchase that comes hours later through the cart
usually no longer carries the page's ``request_id``.

One row per (request_id, item_id): an impression logged twice keeps its first copy (by ts,
then event_id). The row keeps what a ranker groups by (``request_id``, ``surface``, ``query``,
``user_id``) and ``position`` and ``propensity`` for analysis and unbiased estimates;
``position`` must never be a ranking feature. A search impression without a ``query`` takes the
query of the ``search`` event of its request. Same job, same rows on DuckDB and on Spark (the
rules of ``interactions``: integer microseconds, total orders, a sorted fetch).

``impression_heads`` makes the multi-head ranker's rows from the same impressions, window and
join: one binary label per head (``click, save, add_to_cart, purchase, hide``: 1 when an action
of that type on the same request and item falls in the window), plus the impression's ``props``
(the retrieval sources and scores the server logs with each shown item). ``head_actions`` are
the actions those heads learn, which the point-in-time features (``rank.signals``) count.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from moodboard.config import LabelsConfig
from moodboard.data import columns as C
from moodboard.data.records import EventType
from moodboard.pipelines.interactions import US, datetime_us, epoch_us, fetch, first_copies

_log = logging.getLogger(__name__)

#: The label column.
LABEL: Final = "label"
#: Grade of an impression with no action on it.
SHOWN: Final = 1
#: Grade of a hidden impression (unless a save, add_to_cart or purchase wins over it).
HIDDEN: Final = 0
#: Grade of each positive action; the strongest one in the window wins.
GRADES: Final = {
    EventType.CLICK.value: 2,
    EventType.SAVE.value: 3,
    EventType.ADD_TO_CART.value: 4,
    EventType.PURCHASE.value: 5,
}
#: The weakest positive grade that wins over a hide (save).
BEATS_HIDE: Final = GRADES[EventType.SAVE.value]
#: The heads of the multi-head ranker, one binary label column each (``impression_heads``).
HEADS: Final = (*GRADES, EventType.HIDE.value)

LABELS_SCHEMA: Final = pa.schema(
    [
        (C.REQUEST_ID, pa.string()),
        (C.ITEM_ID, pa.string()),
        (C.EVENT_ID, pa.string()),
        (C.TS, pa.timestamp("us")),
        (C.USER_ID, pa.string()),
        (C.SURFACE, pa.string()),
        (C.QUERY, pa.string()),
        (C.POSITION, pa.int32()),
        (C.PROPENSITY, pa.float64()),
        (LABEL, pa.int32()),
    ]
)
LABELS_KEY: Final = (C.REQUEST_ID, C.ITEM_ID)
HEADS_SCHEMA: Final = pa.schema(
    [
        *(f for f in LABELS_SCHEMA if f.name != LABEL),
        (C.PROPS, pa.string()),
        (US, pa.int64()),
        *((h, pa.int8()) for h in HEADS),
    ]
)
_US = "_us"
#: The impression's columns every row keeps.
_KEPT: Final = (
    C.REQUEST_ID,
    C.ITEM_ID,
    C.EVENT_ID,
    C.TS,
    C.USER_ID,
    C.SURFACE,
    C.POSITION,
    C.PROPENSITY,
)


def _first_per(t: ir.Table, key: tuple[str, ...]) -> ir.Table:
    """The first row per ``key`` by (ts, event_id)."""
    w = ibis.window(group_by=[t[k] for k in key], order_by=[t[_US], t[C.EVENT_ID]])
    t = t.mutate(_n=ibis.row_number().over(w))
    return t.filter(t._n == 0).drop("_n")


def _joined(
    events: ir.Table,
    config: LabelsConfig | None,
    as_of: datetime | None,
    exclude_users: ir.Table | None,
) -> ir.Table:
    """Each impression (first copy per ``LABELS_KEY``) with what happened on it in its window:
    ``_best`` (the strongest positive grade), ``_hidden`` and one ``_<head>`` flag per head
    (null when nothing happened), and ``_search_query`` (the query of its request's search)."""
    cfg = config or LabelsConfig()
    window = round(cfg.window_minutes * 60e6)
    e = first_copies(events, (C.QUERY, C.SURFACE, C.POSITION, C.REQUEST_ID, C.PROPENSITY, C.PROPS))
    e = e.filter(e[C.REQUEST_ID].notnull()).mutate(**{_US: epoch_us(e[C.TS])})
    if as_of is not None:
        e = e.filter(e[_US] <= datetime_us(as_of))
    imp = e.filter((e[C.TYPE] == EventType.IMPRESSION.value) & e[C.ITEM_ID].notnull())
    if as_of is not None:
        imp = imp.filter(imp[_US] + window <= datetime_us(as_of))
    if exclude_users is not None:
        imp = imp.anti_join(exclude_users.select(C.USER_ID), C.USER_ID)
    imp = _first_per(imp, LABELS_KEY)
    searches = e.filter((e[C.TYPE] == EventType.SEARCH.value) & e[C.QUERY].notnull())
    searches = _first_per(searches, (C.REQUEST_ID,)).select(
        C.REQUEST_ID, _search_query=searches[C.QUERY]
    )
    acts = e.filter(e[C.TYPE].isin(HEADS) & e[C.ITEM_ID].notnull())
    acts = acts.select(
        _r=acts[C.REQUEST_ID],
        _i=acts[C.ITEM_ID],
        _a_us=acts[_US],
        _type=acts[C.TYPE],
        _grade=ibis.cases(*((acts[C.TYPE] == t, g) for t, g in GRADES.items()), else_=HIDDEN),
    )
    on = imp.select(C.EVENT_ID, C.REQUEST_ID, C.ITEM_ID, _US)
    hits = on.join(
        acts,
        [
            on[C.REQUEST_ID] == acts._r,
            on[C.ITEM_ID] == acts._i,
            acts._a_us >= on[_US],
            acts._a_us <= on[_US] + window,
        ],
    )
    agg = hits.group_by(C.EVENT_ID).aggregate(
        _best=hits._grade.max(),
        _hidden=(hits._type == EventType.HIDE.value).any(),
        **{f"_{h}": (hits._type == h).any() for h in HEADS},
    )
    return imp.left_join(agg, C.EVENT_ID).left_join(searches, C.REQUEST_ID)


def _query(out: ir.Table) -> ir.Value:
    """The impression's own query, else its request's search query."""
    return ibis.coalesce(out[C.QUERY], out._search_query)


def impression_labels(
    events: ir.Table,
    config: LabelsConfig | None = None,
    *,
    as_of: datetime | None = None,
    exclude_users: ir.Table | None = None,
) -> ir.Table:
    """One labelled row per impression (see the module docstring for the grades).

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    config
        The label window; default ``LabelsConfig()``.
    as_of
        Label as known at this instant (naive: UTC): events after it are ignored, and an
        impression whose window is still open at ``as_of`` is left out (its label is not known
        yet). None: every event counts and every impression is kept.
    exclude_users
        A table with a ``user_id`` column (e.g. ``removed_users``): their impressions are
        left out.

    Returns
    -------
    ir.Table
        ``LABELS_SCHEMA`` columns, one row per (request_id, item_id).
    """
    out = _joined(events, config, as_of, exclude_users)
    best = out._best.fill_null(HIDDEN)
    hidden = out._hidden.fill_null(False)
    label = ibis.cases(
        (best >= BEATS_HIDE, best),
        (hidden, HIDDEN),
        (best >= GRADES[EventType.CLICK.value], best),
        else_=SHOWN,
    )
    return out.select(*_KEPT, **{C.QUERY: _query(out), LABEL: label.cast("int32")})


def impression_heads(
    events: ir.Table,
    config: LabelsConfig | None = None,
    *,
    as_of: datetime | None = None,
    exclude_users: ir.Table | None = None,
) -> ir.Table:
    """One row per impression with a binary label per head (the multi-head ranker's rows).

    The impressions, the window, the first-copy rule and ``as_of`` are those of
    :func:`impression_labels`; a head is 1 when an action of its type on the same
    ``request_id`` and item falls in the window (no precedence: a click and a hide are both 1).

    Parameters
    ----------
    events, config, as_of, exclude_users
        As for :func:`impression_labels`.

    Returns
    -------
    ir.Table
        ``HEADS_SCHEMA`` columns (``props`` is the impression's JSON text, ``ts_us`` its time
        in microseconds since the epoch), one row per (request_id, item_id).
    """
    out = _joined(events, config, as_of, exclude_users)
    return out.select(
        *_KEPT,
        C.PROPS,
        **{
            C.QUERY: _query(out),
            US: out[_US],
            **{h: out[f"_{h}"].fill_null(False).cast("int8") for h in HEADS},
        },
    )


def head_actions(events: ir.Table, exclude_users: ir.Table | None = None) -> ir.Table:
    """The actions the heads learn and the point-in-time features count: first copies of
    click, save, add_to_cart, purchase and hide events with a user and an item.

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    exclude_users
        A table with a ``user_id`` column (e.g. ``removed_users``): their actions are left
        out (they weigh on no one's features).

    Returns
    -------
    ir.Table
        ``event_id, ts, user_id, item_id, type, request_id, ts_us``.
    """
    e = first_copies(events, (C.REQUEST_ID,))
    e = e.filter(e[C.TYPE].isin(HEADS) & e[C.USER_ID].notnull() & e[C.ITEM_ID].notnull())
    if exclude_users is not None:
        e = e.anti_join(exclude_users.select(C.USER_ID), C.USER_ID)
    return e.mutate(**{US: epoch_us(e[C.TS])})


def labels_table(
    events: ir.Table,
    config: LabelsConfig | None = None,
    *,
    as_of: datetime | None = None,
    exclude_users: ir.Table | None = None,
) -> pa.Table:
    """:func:`impression_labels`, executed and sorted by ``LABELS_KEY``.

    Returns
    -------
    pa.Table
        ``LABELS_SCHEMA``.
    """
    out = fetch(
        impression_labels(events, config, as_of=as_of, exclude_users=exclude_users),
        LABELS_SCHEMA,
        LABELS_KEY,
    )
    _log.info("labelled %d impressions", out.num_rows)
    return out
