"""An experiment's metrics, computed from the event log with Ibis (DuckDB or Spark).

Exposure: a shopper counts in an experiment once a page of one of its surfaces was served to
them with the experiment in the page's ``arms`` (only exposed shoppers are analysed); their
arm is the one logged. A shopper logged in two arms of one experiment (a changed experiment
file) is left out and counted as ``contaminated``.

Per exposed shopper and UTC day (``user_days``), from the shopper's first exposure on: page
``impressions`` and ``clicks`` on the experiment's surfaces (``surface_clicks``: CTR's
numerator), ``clicks``, ``saves``, ``add_to_carts``, ``purchases`` and ``hides`` on any
surface, ``gmv`` (price x purchases), ``sessions`` begun (a gap over 30 minutes starts one)
and ``pages`` with the pages' summed ``latency_ms`` (the server logs it with each page). The
same counts before the experiment's start (``pre_period_days``) are CUPED's covariate.
``METRICS`` defines each metric over those columns: a mean per user, or a ratio of two sums
(CTR, latency per page: the delta method).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from moodboard.data import columns as C
from moodboard.experiment.spec import ExperimentSpec
from moodboard.ingest import EVENT_SCHEMA, Workspace, pending_on_disk
from moodboard.pipelines.interactions import datetime_us, epoch_us, first_copies
from moodboard.pipelines.ltv import event_day

ARM: Final = "arm"
DAY: Final = "day"
EXPOSED_DAY: Final = "exposed_day"
#: The per-(shopper, day) counts ``user_days`` returns.
COUNTS: Final = (
    "impressions",
    "surface_clicks",
    "clicks",
    "saves",
    "add_to_carts",
    "purchases",
    "hides",
    "gmv",
    "sessions",
    "pages",
    "latency_ms",
)
_ACTIONS: Final = {
    "clicks": "click",
    "saves": "save",
    "add_to_carts": "add_to_cart",
    "purchases": "purchase",
    "hides": "hide",
}
_SESSION_GAP_US: Final = 30 * 60 * 1_000_000
_LATENCY = r'"latency_ms":\s*([0-9.eE+-]+)'


@dataclass(frozen=True)
class Metric:
    """A metric over the per-shopper counts: ``numerator`` per shopper (a mean), or
    ``numerator`` / ``denominator`` summed over shoppers (a ratio, by the delta method).
    ``bad`` is the direction a guardrail must not move in."""

    name: str
    numerator: str
    denominator: str | None = None
    bad: Literal["increase", "decrease"] = "decrease"

    @property
    def kind(self) -> str:
        """``mean`` or ``ratio``."""
        return "mean" if self.denominator is None else "ratio"


METRICS: Final = {
    m.name: m
    for m in (
        Metric("clicks_per_user", "clicks"),
        Metric("saves_per_user", "saves"),
        Metric("add_to_carts_per_user", "add_to_carts"),
        Metric("purchases_per_user", "purchases"),
        Metric("gmv_per_user", "gmv"),
        Metric("sessions_per_user", "sessions"),
        Metric("ctr", "surface_clicks", "impressions"),
        Metric("hides_per_user", "hides", bad="increase"),
        Metric("latency_ms_per_page", "latency_ms", "pages", bad="increase"),
    )
}
#: The metrics an experiment reports unless it names its own, and its default guardrails.
DEFAULT_METRICS: Final = (
    "clicks_per_user",
    "saves_per_user",
    "add_to_carts_per_user",
    "purchases_per_user",
    "gmv_per_user",
    "ctr",
    "sessions_per_user",
)
DEFAULT_GUARDRAILS: Final = ("hides_per_user", "latency_ms_per_page")


def event_log(backend: ibis.BaseBackend, ws: Workspace) -> ir.Table | None:
    """A workspace's events on ``backend``: the Parquet log and the events accepted into the
    write-ahead log but not compacted yet (a running server's latest), ``EVENT_SCHEMA``
    columns; None when there are none."""
    names = EVENT_SCHEMA.names
    parts = []
    if ws.events.files():
        t = backend.read_parquet(ws.events.glob())
        parts.append(t.select(*names).cast(ibis.schema(EVENT_SCHEMA)))
    pending = pending_on_disk(ws) if ws.exists() else EVENT_SCHEMA.empty_table()
    if pending.num_rows:
        parts.append(ibis.memtable(pending.select(names).cast(EVENT_SCHEMA)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts[0].union(parts[1])


def arm_pattern(experiment: str) -> str:
    """The regular expression that finds ``experiment``'s arm in a logged ``arms`` object (the
    names are ``[A-Za-z0-9_-]``, so nothing needs escaping)."""
    return rf'"{experiment}"\s*:\s*"([A-Za-z0-9_-]+)"'


def exposures(
    events: ir.Table,
    spec: ExperimentSpec,
    surfaces: Sequence[str],
    since: datetime,
    until: datetime,
) -> ir.Table:
    """The exposed shoppers: ``user_id``, ``arm``, ``arms`` (distinct arms logged: more than
    one is a contaminated shopper) and ``exposed_us`` (the first exposure)."""
    e = events.filter(
        (events[C.TYPE] == "impression")
        & events[C.SURFACE].isin(list(surfaces))
        & events[C.ARMS].notnull()
        & (epoch_us(events[C.TS]) >= datetime_us(since))
        & (epoch_us(events[C.TS]) < datetime_us(until))
    )
    e = e.mutate(_arm=e[C.ARMS].re_extract(arm_pattern(spec.name), 1))
    e = e.filter(e._arm.notnull() & (e._arm != ""))
    return e.group_by(C.USER_ID).aggregate(
        **{ARM: e._arm.min(), "arms": e._arm.nunique(), "exposed_us": epoch_us(e[C.TS]).min()}
    )


def user_days(
    events: ir.Table,
    products: ir.Table,
    users: ir.Table,
    surfaces: Sequence[str],
    since: datetime,
    until: datetime,
) -> dict[str, ir.Table]:
    """The per-(shopper, day) counts of ``users`` (a table with ``user_id``, and
    ``exposed_us`` to count from each one's first exposure on) over ``[since, until)``, as
    three tables keyed by ``user_id, day``: ``actions`` (impressions, clicks, ..., gmv),
    ``pages`` (pages and their latency on the surfaces) and ``sessions``."""
    e = first_copies(events, (C.SURFACE, C.REQUEST_ID, C.PROPS))
    lo, hi = datetime_us(since), datetime_us(until)
    e = e.filter((epoch_us(e[C.TS]) >= lo) & (epoch_us(e[C.TS]) < hi))
    if "exposed_us" in users.columns:  # from each shopper's first exposure on
        u = users.select(_uid=users[C.USER_ID], _from=users.exposed_us)
        e = e.inner_join(u, e[C.USER_ID] == u._uid)
        e = e.filter(epoch_us(e[C.TS]) >= e._from).drop("_uid", "_from")
    else:
        e = e.semi_join(users.select(C.USER_ID), C.USER_ID)
    e = e.mutate(**{DAY: event_day(e[C.TS]), "_on": e[C.SURFACE].isin(list(surfaces))})
    price = products.select(_pid=products[C.ID], _price=products[C.PRICE])
    e = e.left_join(price, e[C.ITEM_ID] == price._pid)
    one = ibis.literal(1)
    zero = ibis.literal(0)
    counts = {
        "impressions": ((e[C.TYPE] == "impression") & e._on).ifelse(one, zero).sum(),
        "surface_clicks": ((e[C.TYPE] == "click") & e._on).ifelse(one, zero).sum(),
        **{k: (e[C.TYPE] == t).ifelse(one, zero).sum() for k, t in _ACTIONS.items()},
        "gmv": (e[C.TYPE] == "purchase").ifelse(e._price.fill_null(0.0), 0.0).sum(),
    }
    acts = e.group_by([C.USER_ID, DAY]).aggregate(**counts)
    imp = e.filter((e[C.TYPE] == "impression") & e._on & e[C.REQUEST_ID].notnull())
    imp = imp.mutate(_lat=imp[C.PROPS].re_extract(_LATENCY, 1).nullif("").cast("float64"))
    per_page = imp.group_by([C.USER_ID, DAY, C.REQUEST_ID]).aggregate(_lat=imp._lat.max())
    pages = per_page.group_by([C.USER_ID, DAY]).aggregate(
        pages=per_page._lat.notnull().ifelse(one, zero).sum(),
        latency_ms=per_page._lat.fill_null(0.0).sum(),
    )
    s = e.mutate(_us=epoch_us(e[C.TS]))
    w = ibis.window(group_by=s[C.USER_ID], order_by=[s._us, s[C.EVENT_ID]])
    s = s.mutate(_gap=s._us - s._us.lag().over(w))
    s = s.filter(s._gap.isnull() | (s._gap > _SESSION_GAP_US))
    sessions = s.group_by([C.USER_ID, DAY]).aggregate(sessions=s.count())
    return {"actions": acts, "pages": pages, "sessions": sessions}


def first_seen(events: ir.Table, users: ir.Table) -> ir.Table:
    """``user_id, first_us``: each of ``users``' first event of any kind."""
    e = events.semi_join(users.select(C.USER_ID), C.USER_ID)
    return e.group_by(C.USER_ID).aggregate(first_us=epoch_us(e[C.TS]).min())


_DEVICE = r'"device":\s*"([A-Za-z0-9_ .-]{1,40})"'


def devices(events: ir.Table, exposed: ir.Table) -> ir.Table:
    """``user_id, device``: the device each exposed shopper's pages were served to most, when
    the pages log one (``props.device``, e.g. from the client); shoppers without are absent."""
    e = events.filter(events[C.TYPE] == "impression")
    e = e.semi_join(exposed.select(C.USER_ID), C.USER_ID)
    e = e.mutate(_dev=e[C.PROPS].re_extract(_DEVICE, 1)).filter(lambda t: t._dev != "")
    n = e.group_by([C.USER_ID, "_dev"]).aggregate(_n=e.count())
    w = ibis.window(group_by=n[C.USER_ID], order_by=[ibis.desc(n._n), n._dev])
    n = n.mutate(_r=ibis.row_number().over(w))
    return n.filter(n._r == 0).select(C.USER_ID, device=n._dev)


def favourite_category(
    events: ir.Table, products: ir.Table, users: ir.Table, until: datetime
) -> ir.Table:
    """``user_id, category``: the category of most of each shopper's clicks, saves, carts and
    purchases before ``until`` (ties: the first by name); shoppers without any are absent."""
    e = events.filter(
        events[C.TYPE].isin(["click", "save", "add_to_cart", "purchase"])
        & (epoch_us(events[C.TS]) < datetime_us(until))
    )
    e = e.semi_join(users.select(C.USER_ID), C.USER_ID)
    cat = products.select(_pid=products[C.ID], _cat=products[C.CATEGORY])
    e = e.inner_join(cat, e[C.ITEM_ID] == cat._pid).filter(lambda t: t._cat.notnull())
    n = e.group_by([C.USER_ID, "_cat"]).aggregate(_n=e.count())
    w = ibis.window(group_by=n[C.USER_ID], order_by=[ibis.desc(n._n), n._cat])
    n = n.mutate(_r=ibis.row_number().over(w))
    return n.filter(n._r == 0).select(C.USER_ID, **{C.CATEGORY: n._cat})


def merge_days(parts: dict[str, ir.Table]) -> pd.DataFrame:
    """The three ``user_days`` tables, executed, as one frame with every ``COUNTS`` column."""
    key = [C.USER_ID, DAY]
    out: pd.DataFrame | None = None
    for table in parts.values():
        part = table.to_pandas()
        out = part if out is None else out.merge(part, on=key, how="outer")
    assert out is not None
    for col in COUNTS:
        out[col] = out[col].astype("float64").fillna(0.0) if col in out else 0.0
    out[DAY] = out[DAY].astype("int64")
    return out[[*key, *COUNTS]]


def totals(frame: pd.DataFrame, users: np.ndarray) -> dict[str, np.ndarray]:
    """Each ``COUNTS`` column summed per shopper, in the order of ``users`` (0 for a shopper
    without rows)."""
    sums = frame.groupby(C.USER_ID)[list(COUNTS)].sum()
    sums = sums.reindex(pd.Index(users, name=C.USER_ID), fill_value=0.0)
    return {c: sums[c].to_numpy(np.float64) for c in COUNTS}
