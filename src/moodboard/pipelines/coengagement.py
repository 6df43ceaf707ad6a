"""Co-engagement from the event log: sessions, board groups and the item-item graph (Ibis jobs).

A session is a run of one user's engagements with no gap longer than ``gap_minutes``; a board
group is the items saved to one board. Complementary categories are learned from these groups
(``moodboard.surfaces.complements``).

The co-engagement graph links two items when the same user engaged with both in one session
(or within a time window). Every such pair of interactions contributes the product of their
action weights, halved every ``half_life_days`` the later of the two is older than the reference
time.
Contributions are rounded to ``1e-9`` and summed as integers, so the sums (and the top-N order
they decide) are exactly the same whatever order an engine adds them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import columns as C
from moodboard.pipelines.interactions import US, WEIGHT, datetime_us, double, epoch_us, fetch

#: The output columns: a group key (``s:<user>:<n>`` or ``b:<board>``) and an external item id.
GROUP = "group"
#: The graph's output columns (besides ``item_id``).
NEIGHBOR: Final = "neighbor_id"
SCORE: Final = "score"
N_USERS: Final = "n_users"
RANK: Final = "rank"
SESSION: Final = "session"

#: Scores are sums of contributions rounded to this resolution.
SCORE_RESOLUTION: Final = 1e-9
_SCALE: Final = 1e9
_DAY_US: Final = 86_400_000_000

GRAPH_SCHEMA: Final = pa.schema(
    [
        (C.ITEM_ID, pa.string()),
        (RANK, pa.int64()),
        (NEIGHBOR, pa.string()),
        (SCORE, pa.float64()),
        (N_USERS, pa.int64()),
    ]
)
GRAPH_KEY: Final = (C.ITEM_ID, RANK)


class GraphConfig(BaseModel):
    """Which interactions make a pair, how pairs are weighted, how many neighbours to keep.

    Parameters
    ----------
    window
        ``"session"``: pairs within one session (gaps <= ``session_gap_minutes``); ``"time"``:
        pairs at most ``window_minutes`` apart.
    half_life_days
        A contribution halves for every ``half_life_days`` it is older than the reference time.
    reference_time
        UTC "now" of the graph; interactions after it are ignored. Default: the newest
        interaction, or the current time if that is earlier (interactions dated later then
        count as of age 0, so one future date cannot age every real pair away).
    top_n
        Neighbours kept per item.
    min_users
        A pair needs this many distinct users.
    """

    model_config = ConfigDict(extra="forbid")

    window: Literal["session", "time"] = "session"
    session_gap_minutes: float = Field(default=30.0, gt=0)
    window_minutes: float = Field(default=60.0, gt=0)
    half_life_days: float = Field(default=14.0, gt=0)
    reference_time: datetime | None = None
    top_n: int = Field(default=20, ge=1)
    min_users: int = Field(default=1, ge=1)


def sessionize(t: ir.Table, gap_minutes: float) -> ir.Table:
    """Number each user's sessions (``session``, from 1) in (ts, event_id) order.

    ``t`` needs ``user_id``, ``ts`` and ``event_id``; a new session starts after a gap longer than
    ``gap_minutes`` (measured in exact microseconds).
    """
    us = epoch_us(t[C.TS])
    order = [t[C.TS], t[C.EVENT_ID]]
    prev = us.lag().over(ibis.window(group_by=t[C.USER_ID], order_by=order))
    gap = round(gap_minutes * 60_000_000)  # an int: float literals compile to decimals
    t = t.mutate(_new=ibis.ifelse(prev.isnull() | (us - prev > gap), 1, 0))
    order = [t[C.TS], t[C.EVENT_ID]]
    return t.mutate(
        **{SESSION: t._new.cumsum(group_by=t[C.USER_ID], order_by=order).cast("int64")}
    ).drop("_new")


def coengagement(events: ir.Table, actions: Sequence[str], gap_minutes: float = 30.0) -> ir.Table:
    """``group, item_id``: distinct items per session (of ``actions``) and per board (saves)."""
    e = events.filter(events[C.TYPE].isin(list(actions)) & events[C.ITEM_ID].notnull())
    e = e.select(C.EVENT_ID, C.USER_ID, C.TS, C.ITEM_ID, C.TYPE, C.BOARD_ID)
    e = sessionize(e, gap_minutes)
    sessions = e.select(
        **{
            GROUP: ibis.literal("s:") + e[C.USER_ID] + ":" + e[SESSION].cast("string"),
            C.ITEM_ID: e[C.ITEM_ID],
        }
    )
    saved = e.filter((e[C.TYPE] == "save") & e[C.BOARD_ID].notnull())
    boards = saved.select(
        **{GROUP: ibis.literal("b:") + saved[C.BOARD_ID], C.ITEM_ID: saved[C.ITEM_ID]}
    )
    return sessions.union(boards, distinct=True)


def coengagement_table(
    backend: ibis.BaseBackend,
    events_glob: str,
    actions: Sequence[str],
    gap_minutes: float = 30.0,
    *,
    exclude_users: ir.Table | None = None,
) -> pa.Table:
    """Run ``coengagement`` over Parquet event parts on a backend (``exclude_users``, a table
    with a ``user_id`` column, left out)."""
    events = backend.read_parquet(events_glob)
    if exclude_users is not None:
        events = events.anti_join(exclude_users.select(C.USER_ID), C.USER_ID)
    return coengagement(events, actions, gap_minutes).to_pyarrow()


def coengagement_graph(interactions: ir.Table, config: GraphConfig | None = None) -> ir.Table:
    """``item_id, rank, neighbor_id, score, n_users``: each item's top co-engaged items.

    Parameters
    ----------
    interactions
        The output of :func:`moodboard.pipelines.interactions`.
    config
        Window, decay and size; default ``GraphConfig()``.

    Returns
    -------
    ir.Table
        Per item up to ``top_n`` neighbours, ranked (from 1) by score, then neighbour id.
    """
    cfg = config or GraphConfig()
    t = interactions
    if US not in t.columns:
        t = t.mutate(**{US: epoch_us(t[C.TS])})
    newest = None
    if cfg.reference_time is not None:
        t = t.filter(t[US] <= datetime_us(cfg.reference_time))
    else:  # a one-row table: a bare max() would become a window over the pairs
        limit = ibis.literal(datetime_us(datetime.now(UTC)), "int64")
        newest = t.aggregate(_ref=ibis.least(t[US].max(), limit))
    if cfg.window == "session":
        t = sessionize(t, cfg.session_gap_minutes)
    else:
        t = t.mutate(**{SESSION: ibis.literal(0, "int64")})
    cols = {"u": C.USER_ID, "i": C.ITEM_ID, "t": US, "w": WEIGHT, "s": SESSION}
    a = t.select(**{f"a_{k}": t[v] for k, v in cols.items()})
    b = t.select(**{f"b_{k}": t[v] for k, v in cols.items()})
    on = [a.a_u == b.b_u, a.a_s == b.b_s, a.a_i != b.b_i]
    if cfg.window == "time":
        on.append((a.a_t - b.b_t).abs() <= round(cfg.window_minutes * 60_000_000))
    p = a.join(b, on)
    if newest is not None:
        p = p.cross_join(newest)
        ref = p._ref
    else:
        ref = ibis.literal(datetime_us(cfg.reference_time), "int64")
    age_us = ibis.greatest(ref - ibis.greatest(p.a_t, p.b_t), 0)
    age_days = age_us.cast("float64") / double(_DAY_US)
    decay = double(0.5) ** (age_days / double(cfg.half_life_days))
    p = p.mutate(_q=(p.a_w * p.b_w * decay * double(_SCALE)).round().cast("int64"))
    g = p.group_by(p.a_i, p.b_i).aggregate(_q=p._q.sum().cast("int64"), _n=p.a_u.nunique())
    g = g.filter(g._n >= cfg.min_users)
    best = ibis.window(group_by=g.a_i, order_by=[ibis.desc(g._q), g.b_i])
    g = g.mutate(_rank=ibis.row_number().over(best) + 1)
    g = g.filter(g._rank <= cfg.top_n)
    return g.select(
        **{
            C.ITEM_ID: g.a_i,
            RANK: g._rank.cast("int64"),
            NEIGHBOR: g.b_i,
            SCORE: g._q.cast("float64") / double(_SCALE),
            N_USERS: g._n.cast("int64"),
        }
    )


def coengagement_graph_table(interactions: ir.Table, config: GraphConfig | None = None) -> pa.Table:
    """Run :func:`coengagement_graph` on the backend ``interactions`` is bound to.

    Returns
    -------
    pa.Table
        ``GRAPH_SCHEMA``, sorted by item and rank.
    """
    return fetch(coengagement_graph(interactions, config), GRAPH_SCHEMA, GRAPH_KEY)
