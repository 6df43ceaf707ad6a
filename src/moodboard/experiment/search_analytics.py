"""Search analytics for the people who tune search, from the event log with Ibis (DuckDB or
Spark), read as the experiments read it (``metrics.event_log``: Parquet plus the pending WAL).

Definitions (events deduplicated by ``event_id``):

- A **search** is a ``search`` event with a ``query`` and a ``request_id`` (the first one of
  a request id counts). A first page of the search surface (impressions with a query, a
  ``request_id`` and position 1) whose request has no ``search`` event counts too, so a log of
  the served pages alone (the web app) is analysed; those have ``via`` none.
- Its **query** is the text trimmed, lower-cased, inner whitespace collapsed.
- Its **results** are the impressions sharing its ``request_id`` (a server logs none for an
  empty page). A **zero-result** search has no impression row.
- It is **engaged** when a click, save, add-to-cart or purchase references its request id.
  CTR = engaged searches / searches (later pages have their own request ids: not counted).
- A query is **low-engagement** when it has at least ``min_volume`` searches and a CTR at most
  ``low_ctr_ratio`` x the median CTR of such queries.
- **Trend**: searches in the second half of the window / searches in the first half (None
  when the first half has none); the window's halves split the time from its first search to
  its end, so a log shorter than the window is split in two halves of its own.
- **Click-through by position** p: clicks logged with position p / impressions at position
  p, on the search surface and on all surfaces (the position bias the ranker must undo).
- **Via**: how the search was started, from ``props.via`` (``autocomplete`` a picked
  completion, ``chip`` a refinement chip, ``related`` a related search, ``module`` a page
  module; ``none`` when absent, ``other`` for any other value): searches and CTR per via.
- **Reformulated**: the same shopper searched again within ``reformulation_s`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import ibis
import ibis.expr.types as ir
import pandas as pd

from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.experiment.data import day_date
from moodboard.experiment.metrics import event_log
from moodboard.experiment.search_config import SearchAnalyticsConfig
from moodboard.ingest import Workspace
from moodboard.pipelines.engine import connect
from moodboard.pipelines.interactions import datetime_us, epoch_us, first_copies

#: The ``props.via`` values the web app sends.
VIAS: Final = ("autocomplete", "chip", "related", "module")
_VIA = r'"via"\s*:\s*"([A-Za-z_]{1,20})"'
_DAY_US: Final = 86_400_000_000
_ENGAGING: Final = ("click", "save", "add_to_cart", "purchase")


@dataclass
class SearchAnalytics:
    """One analysis: JSON-able through ``to_dict``.

    Attributes
    ----------
    since, until
        The window (ISO times).
    totals
        ``searches``, ``users``, ``zero_result``, ``zero_result_rate``, ``engaged``, ``ctr``,
        ``clicks_per_search``, ``reformulated``, ``reformulation_rate``.
    top_queries, zero_result_queries, low_engagement_queries
        Rows of ``query, searches, users, zero_result, ctr, trend``.
    median_ctr
        The median CTR of the queries with ``min_volume`` searches (None: no such query).
    positions
        Rows of ``position, impressions, clicks, ctr, impressions_all, clicks_all, ctr_all``.
    via
        Rows of ``via, searches, share, ctr``.
    daily
        Rows of ``day, searches, zero_result, engaged``.
    """

    since: str
    until: str
    config: dict[str, Any]
    totals: dict[str, Any]
    top_queries: list[dict[str, Any]]
    zero_result_queries: list[dict[str, Any]]
    low_engagement_queries: list[dict[str, Any]]
    median_ctr: float | None
    positions: list[dict[str, Any]]
    via: list[dict[str, Any]]
    daily: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The analysis as plain JSON types."""
        return asdict(self)


def search_rows(events: ir.Table, since: datetime, until: datetime) -> ir.Table:
    """One row per search in ``[since, until)``: ``request_id, user_id, us, query, via,
    shown`` (its impressions), ``clicks``, ``engaged`` (0/1)."""
    e = first_copies(events, (C.QUERY, C.SURFACE, C.POSITION, C.REQUEST_ID, C.PROPS))
    e = e.mutate(_us=epoch_us(e[C.TS]), _q=_normal(e[C.QUERY]))
    lo, hi = datetime_us(since), datetime_us(until)
    inside = (e._us >= lo) & (e._us < hi) & e[C.REQUEST_ID].notnull() & (e._q != "")
    s = e.filter(inside & (e[C.TYPE] == "search"))
    first = ibis.window(group_by=s[C.REQUEST_ID], order_by=[s._us, s[C.EVENT_ID]])
    s = s.mutate(_r=ibis.row_number().over(first), _v=s[C.PROPS].re_extract(_VIA, 1))
    s = s.filter(s._r == 0)
    logged = s.select(C.REQUEST_ID, C.USER_ID, us=s._us, query=s._q, via=s._v.fill_null(""))
    p = e.filter(inside & (e[C.TYPE] == "impression") & (e[C.SURFACE] == "search"))
    pages = p.group_by(C.REQUEST_ID).aggregate(
        **{C.USER_ID: p[C.USER_ID].min()}, us=p._us.min(), query=p._q.min(), _p=p[C.POSITION].min()
    )
    pages = pages.filter(pages._p == 1).anti_join(logged, C.REQUEST_ID)
    pages = pages.select(C.REQUEST_ID, C.USER_ID, "us", "query", via=ibis.literal(""))
    found = logged.union(pages)
    imp = e.filter((e[C.TYPE] == "impression") & e[C.REQUEST_ID].notnull())
    shown = imp.group_by(C.REQUEST_ID).aggregate(shown=imp.count())
    act = e.filter(e[C.TYPE].isin(list(_ENGAGING)) & e[C.REQUEST_ID].notnull())
    acts = act.group_by(C.REQUEST_ID).aggregate(
        clicks=(act[C.TYPE] == "click").ifelse(1, 0).sum(), _n=act.count()
    )
    out = found.left_join(shown, C.REQUEST_ID).drop(f"{C.REQUEST_ID}_right")
    out = out.left_join(acts, C.REQUEST_ID).drop(f"{C.REQUEST_ID}_right")
    via = out.via.isin(list(VIAS)).ifelse(out.via, (out.via == "").ifelse("none", "other"))
    return out.select(
        C.REQUEST_ID,
        C.USER_ID,
        "us",
        "query",
        via=via,
        shown=out.shown.fill_null(0),
        clicks=out.clicks.fill_null(0),
        engaged=(out._n.fill_null(0) > 0).ifelse(1, 0),
    )


def _normal(q: ir.StringValue) -> ir.StringValue:
    return q.fill_null("").strip().lower().re_replace(r"\s+", " ")


def per_query(rows: ir.Table, mid_us: int) -> ir.Table:
    """``query, searches, users, zero_result, engaged, early, late`` per query."""
    one, zero = ibis.literal(1), ibis.literal(0)
    return rows.group_by("query").aggregate(
        searches=rows.count(),
        users=rows[C.USER_ID].nunique(),
        zero_result=(rows.shown == 0).ifelse(one, zero).sum(),
        engaged=rows.engaged.sum(),
        early=(rows.us < mid_us).ifelse(one, zero).sum(),
        late=(rows.us >= mid_us).ifelse(one, zero).sum(),
    )


def position_curve(events: ir.Table, since: datetime, until: datetime, positions: int) -> ir.Table:
    """``position, on_search, impressions, clicks`` for positions 1 .. ``positions``."""
    e = first_copies(events, (C.SURFACE, C.POSITION))
    us = epoch_us(e[C.TS])
    e = e.filter(
        e[C.TYPE].isin(["impression", "click"])
        & e[C.POSITION].between(1, positions)
        & (us >= datetime_us(since))
        & (us < datetime_us(until))
    )
    e = e.mutate(on_search=(e[C.SURFACE] == "search").fill_null(False))
    one, zero = ibis.literal(1), ibis.literal(0)
    return e.group_by([C.POSITION, "on_search"]).aggregate(
        impressions=(e[C.TYPE] == "impression").ifelse(one, zero).sum(),
        clicks=(e[C.TYPE] == "click").ifelse(one, zero).sum(),
    )


def reformulated(rows: ir.Table, within_s: float) -> ir.Table:
    """``reformulated``: the searches followed by one of the same shopper within
    ``within_s`` seconds."""
    w = ibis.window(group_by=rows[C.USER_ID], order_by=[rows.us, rows[C.REQUEST_ID]])
    r = rows.mutate(_next=rows.us.lead().over(w))
    gap = r._next - r.us
    hit = (r._next.notnull() & (gap <= int(within_s * 1_000_000))).ifelse(1, 0)
    return r.aggregate(reformulated=hit.sum())


def analyze_search(
    ws: Workspace,
    config: SearchAnalyticsConfig | None = None,
    *,
    until: datetime | None = None,
    engine: Literal["duckdb", "spark"] = "duckdb",
) -> SearchAnalytics:
    """Analyse the searches of a workspace's event log.

    Parameters
    ----------
    ws
        The workspace (its Parquet log and pending WAL are read).
    config
        The analysis settings (default ``SearchAnalyticsConfig()``).
    until
        The window's end (exclusive); default just after the latest search.
    engine
        Where the expressions run.

    Raises
    ------
    InputError
        If ``until`` is not timezone-aware.
    """
    cfg = config or SearchAnalyticsConfig()
    if until is not None and until.tzinfo is None:
        raise InputError(f"The 'until' time must carry a timezone. Got {until} instead.")
    events = event_log(connect(engine), ws)
    if until is None:
        until = _latest_search(events) if events is not None else None
    until = until or datetime.now(UTC)
    since = until - timedelta(days=cfg.window_days)
    if events is None:
        return _assemble(cfg, since, until, *(pd.DataFrame() for _ in range(6)), 0)
    rows = search_rows(events, since, until)
    first = rows.aggregate(_us=rows.us.min()).to_pandas()["_us"][0]
    start = datetime_us(since) if first is None or pd.isna(first) else int(first)
    mid = (start + datetime_us(until)) // 2
    q = per_query(rows, mid)
    ctr = q.engaged / q.searches
    top = q.order_by([ibis.desc(q.searches), q.query]).limit(cfg.top_queries)
    zero = q.filter(q.zero_result > 0)
    zero = zero.order_by([ibis.desc(zero.zero_result), zero.query]).limit(cfg.top_queries)
    frequent = q.filter(q.searches >= cfg.min_volume).mutate(ctr=ctr)
    day = rows.mutate(day=rows.us // _DAY_US)
    one, none_ = ibis.literal(1), ibis.literal(0)
    daily = day.group_by("day").aggregate(
        searches=day.count(),
        zero_result=(day.shown == 0).ifelse(one, none_).sum(),
        engaged=day.engaged.sum(),
    )
    via = rows.group_by("via").aggregate(searches=rows.count(), engaged=rows.engaged.sum())
    totals = rows.aggregate(
        searches=rows.count(),
        users=rows[C.USER_ID].nunique(),
        zero_result=(rows.shown == 0).ifelse(one, none_).sum(),
        engaged=rows.engaged.sum(),
        clicks=rows.clicks.sum(),
    )
    refo = int(reformulated(rows, cfg.reformulation_s).to_pandas()["reformulated"].fillna(0)[0])
    frames = [t.to_pandas() for t in (totals, top, zero, frequent, daily, via)]
    curve = position_curve(events, since, until, cfg.positions).to_pandas()
    return _assemble(cfg, since, until, *frames, refo, curve)


def _latest_search(events: ir.Table) -> datetime | None:
    e = events.filter(events[C.TYPE].isin(["search", "impression"]))
    latest = e.aggregate(_us=epoch_us(e[C.TS]).max()).to_pandas()["_us"][0]
    if latest is None or pd.isna(latest):
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(latest) + 1)


def _num(x: Any) -> float | None:
    v = float(x)
    return v if math.isfinite(v) else None


def _queries(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for r in frame.itertuples(index=False):
        early, late = int(r.early), int(r.late)
        out.append(
            {
                "query": str(r.query),
                "searches": int(r.searches),
                "users": int(r.users),
                "zero_result": int(r.zero_result),
                "ctr": int(r.engaged) / int(r.searches),
                "trend": late / early if early else None,
            }
        )
    return out


def _assemble(
    cfg: SearchAnalyticsConfig,
    since: datetime,
    until: datetime,
    totals: pd.DataFrame,
    top: pd.DataFrame,
    zero: pd.DataFrame,
    frequent: pd.DataFrame,
    daily: pd.DataFrame,
    via: pd.DataFrame,
    refo: int,
    curve: pd.DataFrame | None = None,
) -> SearchAnalytics:
    t = totals.iloc[0].fillna(0) if len(totals) else pd.Series(dtype=float)
    n = int(t.get("searches", 0))
    engaged, zeros = int(t.get("engaged", 0)), int(t.get("zero_result", 0))
    summary = {
        "searches": n,
        "users": int(t.get("users", 0)),
        "zero_result": zeros,
        "zero_result_rate": zeros / n if n else None,
        "engaged": engaged,
        "ctr": engaged / n if n else None,
        "clicks_per_search": int(t.get("clicks", 0)) / n if n else None,
        "reformulated": refo,
        "reformulation_rate": refo / n if n else None,
    }
    median = _num(frequent["ctr"].median()) if len(frequent) else None
    low: list[dict[str, Any]] = []
    if median is not None and median > 0:
        cut = frequent[frequent["ctr"] <= cfg.low_ctr_ratio * median]
        cut = cut.sort_values(["searches", "query"], ascending=[False, True])
        low = _queries(cut.head(cfg.top_queries))
    return SearchAnalytics(
        since=since.isoformat(),
        until=until.isoformat(),
        config=cfg.model_dump(),
        totals=summary,
        top_queries=_queries(top),
        zero_result_queries=_queries(zero),
        low_engagement_queries=low,
        median_ctr=median,
        positions=_positions(curve, cfg.positions),
        via=_via(via, n),
        daily=[
            {
                "day": day_date(int(r.day)),
                "searches": int(r.searches),
                "zero_result": int(r.zero_result),
                "engaged": int(r.engaged),
            }
            for r in daily.sort_values("day").itertuples(index=False)
        ]
        if len(daily)
        else [],
    )


def _positions(curve: pd.DataFrame | None, positions: int) -> list[dict[str, Any]]:
    if curve is None or curve.empty:
        return []
    curve = curve.fillna(0)
    on = curve[curve["on_search"].astype(bool)].set_index(C.POSITION)
    every = curve.groupby(C.POSITION)[["impressions", "clicks"]].sum()
    out = []
    for p in range(1, positions + 1):
        imp = int(on["impressions"].get(p, 0)) if len(on) else 0
        clk = int(on["clicks"].get(p, 0)) if len(on) else 0
        imp_all = int(every["impressions"].get(p, 0))
        clk_all = int(every["clicks"].get(p, 0))
        if not imp_all and not clk_all:
            continue
        out.append(
            {
                "position": p,
                "impressions": imp,
                "clicks": clk,
                "ctr": clk / imp if imp else None,
                "impressions_all": imp_all,
                "clicks_all": clk_all,
                "ctr_all": clk_all / imp_all if imp_all else None,
            }
        )
    return out


def _via(via: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    got = {str(r.via): (int(r.searches), int(r.engaged)) for r in via.itertuples(index=False)}
    out = []
    for name in ("none", *VIAS, "other"):
        s, e = got.get(name, (0, 0))
        if s or name != "other":
            out.append(
                {
                    "via": name,
                    "searches": s,
                    "share": s / n if n else None,
                    "ctr": e / s if s else None,
                }
            )
    return out
