"""Accounts that are not human, flagged by named rules over their events (an Ibis job).

Each account's deduplicated events give five statistics, and each has a rule
(``BotsConfig`` holds the thresholds, ``[bots]`` in moodboard.toml):

==================  ===================================================================
rule                the account is flagged when
==================  ===================================================================
``per_minute``      its peak actions (click, save, add_to_cart, purchase) within any 60
                    seconds exceed ``max_per_minute`` (a click flood)
``per_day``         its actions on one UTC day exceed ``max_per_day``
``repeated_query``  one query text (lower-cased, trimmed) is searched more than
                    ``max_same_query_per_day`` times on one UTC day (a query burst)
``regular_gaps``    the gaps between its consecutive events of one type (impressions,
                    which the server logs, aside), within a session (gaps of
                    ``max_gap_minutes`` or more are breaks, not judged), vary less than
                    ``max_gap_cv`` (standard deviation / mean), over ``min_gaps`` gaps or
                    more: a script's clock
``item_entropy``    its actions spread over fewer items than a shopper's: entropy under
                    ``min_item_entropy`` bits over ``min_entropy_actions`` actions or more
                    (save spam on a few items)
==================  ===================================================================

The lines of one order (purchases of one account at one instant, as a store logs an order)
count as one action and one event (``interactions.one_per_order``): a basket of 40 items is one
checkout, not a flood, and its lines have no gaps between them for ``regular_gaps`` to judge.

An account is reported once, with the first rule (in that order) that caught it, and every
statistic. The same rows on DuckDB and Spark: gaps are whole seconds summed as integers,
entropy terms are rounded to 1e-9 and summed as integers, and the two floating statistics are
rounded to 1e-6 (the rules of ``interactions``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import BotsConfig
from moodboard.data import columns as C
from moodboard.data.records import EventType
from moodboard.pipelines.interactions import (
    N_ACTIONS,
    PEAK_DAY,
    PEAK_MINUTE,
    US,
    InteractionsConfig,
    action_rates,
    actions,
    double,
    epoch_us,
    fetch,
    first_copies,
    one_per_order,
)

_log = logging.getLogger(__name__)

#: The rules, in the order they are tried.
RULES: Final = ("per_minute", "per_day", "repeated_query", "regular_gaps", "item_entropy")
RULE: Final = "rule"
SAME_QUERY: Final = "max_same_query_per_day"
GAP_CV: Final = "gap_cv"
ENTROPY: Final = "item_entropy"

BOTS_SCHEMA: Final = pa.schema(
    [
        (C.USER_ID, pa.string()),
        (RULE, pa.string()),
        (N_ACTIONS, pa.int64()),
        (PEAK_MINUTE, pa.int64()),
        (PEAK_DAY, pa.int64()),
        (SAME_QUERY, pa.int64()),
        (GAP_CV, pa.float64()),
        (ENTROPY, pa.float64()),
    ]
)
_ALL_ACTIONS = InteractionsConfig(
    weights={t: 1.0 for t in ("click", "save", "add_to_cart", "purchase")}
)


def _micro(x: ir.FloatingValue) -> ir.FloatingValue:
    """``x`` rounded to 1e-6 (the same double on every engine)."""
    return (x * double(1e6)).round().cast("int64").cast("float64") / double(1e6)


def _same_query(e: ir.Table) -> ir.Table:
    """``user_id, max_same_query_per_day``: the most searches of one text on one UTC day."""
    s = e.filter((e[C.TYPE] == EventType.SEARCH.value) & e[C.QUERY].notnull())
    s = s.mutate(_q=s[C.QUERY].lower().strip(), _day=s[C.TS].date())
    per = s.group_by(C.USER_ID, "_day", "_q").aggregate(_n=s[C.EVENT_ID].count())
    return per.group_by(C.USER_ID).aggregate(**{SAME_QUERY: per._n.max().cast("int64")})


def _gap_cv(e: ir.Table, cfg: BotsConfig) -> ir.Table:
    """``user_id, gap_cv``: the least variable event type's gaps within sessions."""
    t = e.filter(e[C.TYPE] != EventType.IMPRESSION.value).mutate(_us=epoch_us(e[C.TS]))
    t = one_per_order(t, "_us")
    w = ibis.window(group_by=[t[C.USER_ID], t[C.TYPE]], order_by=[t._us, t[C.EVENT_ID]])
    t = t.mutate(_gap_us=t._us - t._us.lag().over(w))
    brk = round(cfg.max_gap_minutes * 60e6)
    g = t.filter(t._gap_us.notnull() & (t._gap_us < brk))
    g = g.mutate(_s=(g._gap_us // 1_000_000).cast("int64"))
    per = g.group_by(C.USER_ID, C.TYPE).aggregate(
        _n=g._s.count().cast("int64"), _sum=g._s.sum().cast("int64"), _sq=(g._s * g._s).sum()
    )
    per = per.filter(per._n >= cfg.min_gaps)
    n, s, sq = (per[c].cast("float64") for c in ("_n", "_sum", "_sq"))
    var = ibis.greatest(sq / (n - double(1.0)) - s * s / (n * (n - double(1.0))), double(0.0))
    cv = ibis.cases((per._sum == 0, double(0.0)), else_=var.sqrt() / (s / n))
    per = per.mutate(_cv=cv)
    return per.group_by(C.USER_ID).aggregate(**{GAP_CV: _micro(per._cv.min())})


def _entropy(acts: ir.Table, cfg: BotsConfig) -> ir.Table:
    """``user_id, item_entropy`` (bits) of accounts with ``min_entropy_actions`` or more."""
    per = acts.group_by(C.USER_ID, C.ITEM_ID).aggregate(_c=acts[C.EVENT_ID].count())
    c = per._c.cast("float64")
    per = per.mutate(_units=(c * c.ln() * double(1e9)).round().cast("int64"))
    u = per.group_by(C.USER_ID).aggregate(_n=per._c.sum().cast("int64"), _units=per._units.sum())
    u = u.filter(u._n >= cfg.min_entropy_actions)
    n = u._n.cast("float64")
    nats = n.ln() - u._units.cast("float64") / double(1e9) / n
    return u.select(C.USER_ID, **{ENTROPY: _micro(nats / double(2.0).ln())})


def account_stats(events: ir.Table, config: BotsConfig | None = None) -> ir.Table:
    """Every account's statistics the rules read, one row per ``user_id``.

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    config
        The rules' thresholds (the minimum counts decide which statistics are judged).

    Returns
    -------
    ir.Table
        ``BOTS_SCHEMA`` without ``rule``: counts are 0 for an account without such events;
        ``gap_cv`` and ``item_entropy`` are null where too few events were seen to judge.
    """
    cfg = config or BotsConfig()
    e = first_copies(events, (C.QUERY,))
    e = e.filter(e[C.USER_ID].notnull())
    acts = actions(events, _ALL_ACTIONS)
    users = e.select(C.USER_ID).distinct()
    out = (
        users.left_join(
            action_rates(acts.select(C.USER_ID, C.EVENT_ID, C.TS, C.TYPE, US)), C.USER_ID
        )
        .drop(f"{C.USER_ID}_right")
        .left_join(_same_query(e), C.USER_ID)
        .drop(f"{C.USER_ID}_right")
        .left_join(_gap_cv(e, cfg), C.USER_ID)
        .drop(f"{C.USER_ID}_right")
        .left_join(_entropy(acts, cfg), C.USER_ID)
        .drop(f"{C.USER_ID}_right")
    )
    return out.mutate(
        **{k: out[k].fill_null(0) for k in (N_ACTIONS, PEAK_MINUTE, PEAK_DAY, SAME_QUERY)}
    )


def flag_bots(events: ir.Table, config: BotsConfig | None = None) -> ir.Table:
    """The flagged accounts, each with the first rule that caught it (see the module docstring).

    Returns
    -------
    ir.Table
        ``BOTS_SCHEMA`` columns; no rows when ``config.enabled`` is False.
    """
    cfg = config or BotsConfig()
    st = account_stats(events, cfg)
    caught = (
        (st[PEAK_MINUTE] > cfg.max_per_minute, RULES[0]),
        (st[PEAK_DAY] > cfg.max_per_day, RULES[1]),
        (st[SAME_QUERY] > cfg.max_same_query_per_day, RULES[2]),
        (st[GAP_CV].notnull() & (st[GAP_CV] < double(cfg.max_gap_cv)), RULES[3]),
        (st[ENTROPY].notnull() & (st[ENTROPY] < double(cfg.min_item_entropy)), RULES[4]),
    )
    st = st.mutate(**{RULE: ibis.cases(*caught, else_=ibis.null("string"))})
    st = st.filter(st[RULE].notnull() & ibis.literal(cfg.enabled))
    return st.select(*BOTS_SCHEMA.names)


@dataclass(frozen=True)
class Bots:
    """The flagged accounts (``BOTS_SCHEMA``, sorted by user) and the settings that flagged
    them."""

    flagged: pa.Table
    config: BotsConfig

    @property
    def user_ids(self) -> list[str]:
        """The flagged accounts."""
        return self.flagged.column(C.USER_ID).to_pylist()

    def counts(self) -> dict[str, int]:
        """Accounts per first rule that caught them, every rule named (0 when it caught none)."""
        rules = self.flagged.column(RULE)
        return {r: int(pc.sum(pc.equal(rules, r)).as_py() or 0) for r in RULES}

    def exclude(self) -> ir.Table:
        """The flagged ``user_id`` as an in-memory Ibis table (``exclude_users=`` of the jobs)."""
        return ibis.memtable(self.flagged.select([C.USER_ID]))

    def as_dict(self) -> dict[str, Any]:
        """For the build manifest: whether the filter ran, how many accounts, and by which rule."""
        return {"enabled": self.config.enabled, "flagged": self.flagged.num_rows,
                "by_rule": self.counts()}  # fmt: skip


def bots_table(events: ir.Table, config: BotsConfig | None = None) -> Bots:
    """Run :func:`flag_bots` and fetch its rows sorted by ``user_id``.

    Parameters
    ----------
    events
        The event log on any backend.
    config
        The rules' thresholds; default ``BotsConfig()``.

    Returns
    -------
    Bots
        The flagged accounts and the config.
    """
    cfg = config or BotsConfig()
    out = Bots(fetch(flag_bots(events, cfg), BOTS_SCHEMA, (C.USER_ID,)), cfg)
    if out.flagged.num_rows:
        _log.info("flagged %d accounts as bots: %s", out.flagged.num_rows, out.counts())
    return out
