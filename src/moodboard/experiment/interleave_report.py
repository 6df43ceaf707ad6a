"""The analysis of an interleaving experiment from the event log: clicks credited to the arm
(team) whose ranking placed the clicked item on an interleaved page, per shopper, and the
verdict (``experiment.interleave.preference``).

Clicks are credited per page, as per query in the literature (Chapelle et al. 2012): a page
goes to the team with more of its clicks, and a shopper's preference counts the pages each team
won (``simulate.interleave`` measures the same way).

An interleaved page logs ``arms = {experiment: "interleaved"}`` and each item's ``team`` in its
``props`` scores (0: the first arm, 1: the second). A click joins its page's impression by
``request_id`` and ``item_id``: the Ibis job (DuckDB or Spark) returns each shopper's credited
clicks and interleaved pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import numpy as np

from moodboard.data import columns as C
from moodboard.experiment.assign import INTERLEAVED
from moodboard.experiment.interleave import preference
from moodboard.experiment.metrics import arm_pattern, event_log
from moodboard.experiment.spec import ExperimentSettings, ExperimentSpec
from moodboard.ingest import Workspace
from moodboard.pipelines.engine import connect
from moodboard.pipelines.interactions import datetime_us, epoch_us, first_copies

_TEAM = r'"team":\s*([01])'


def credited_clicks(
    events: ir.Table, spec: ExperimentSpec, since: datetime, until: datetime
) -> ir.Table:
    """``user_id, pages, clicks_a, clicks_b, won_a, won_b``: each shopper's interleaved pages
    of ``spec`` in ``[since, until)``, their clicks on each team's items, and the pages each
    team won (more of the page's clicks; a page without clicks or tied is won by neither)."""
    e = first_copies(events, (C.SURFACE, C.REQUEST_ID, C.PROPS, C.ARMS))
    window = (epoch_us(e[C.TS]) >= datetime_us(since)) & (epoch_us(e[C.TS]) < datetime_us(until))
    imp = e.filter(window & (e[C.TYPE] == "impression") & e[C.ARMS].notnull())
    imp = imp.filter(imp[C.ARMS].re_extract(arm_pattern(spec.name), 1) == INTERLEAVED)
    imp = imp.mutate(_team=imp[C.PROPS].re_extract(_TEAM, 1))
    imp = imp.filter(imp._team != "").select(
        _rid=imp[C.REQUEST_ID], _iid=imp[C.ITEM_ID], _team=imp._team, _uid=imp[C.USER_ID]
    )
    imp = imp.distinct(on=["_rid", "_iid"], keep="first")
    pages = imp.group_by("_uid").aggregate(pages=imp._rid.nunique())
    clicks = e.filter(window & (e[C.TYPE] == "click") & e[C.REQUEST_ID].notnull())
    hit = clicks.inner_join(
        imp, (clicks[C.REQUEST_ID] == imp._rid) & (clicks[C.ITEM_ID] == imp._iid)
    )
    one, zero = ibis.literal(1), ibis.literal(0)
    per_page = hit.group_by([hit[C.USER_ID].name("_uid"), "_rid"]).aggregate(
        _a=(hit._team == "0").ifelse(one, zero).sum(),
        _b=(hit._team == "1").ifelse(one, zero).sum(),
    )
    per_user = per_page.group_by("_uid").aggregate(
        clicks_a=per_page._a.sum(),
        clicks_b=per_page._b.sum(),
        won_a=(per_page._a > per_page._b).ifelse(one, zero).sum(),
        won_b=(per_page._b > per_page._a).ifelse(one, zero).sum(),
    )
    out = pages.left_join(per_user, "_uid")
    return out.select(
        **{C.USER_ID: out._uid},
        pages=out.pages,
        **{c: out[c].fill_null(0) for c in ("clicks_a", "clicks_b", "won_a", "won_b")},
    )


def interleaving_report(
    ws: Workspace,
    spec: ExperimentSpec,
    settings: ExperimentSettings,
    as_of: datetime,
    engine: Literal["duckdb", "spark"] = "duckdb",
) -> dict[str, Any]:
    """The analysis of interleaving experiment ``spec`` (the keys of ``experiment.analysis``'s
    result, with ``interleaving`` holding the verdict and no per-metric rows)."""
    end = min(t for t in (spec.stop, as_of) if t is not None)
    since = spec.start or datetime(1970, 1, 1, tzinfo=UTC)
    a, b = (arm.name for arm in spec.arms)
    out: dict[str, Any] = {
        "experiment": spec.model_dump(mode="json"),
        "as_of": as_of.isoformat(),
        "window": [since.isoformat(), end.isoformat()],
        "control": a,
        "alpha": settings.alpha,
        "exposures": {INTERLEAVED: 0},
        "srm": None,
        "metrics": [],
        "daily": [],
        "segments": [],
        "guardrails": [],
    }
    events = event_log(connect(engine), ws)
    if events is None:
        out["verdict"] = {"decision": "no_data", "why": "No interleaved page was logged yet."}
        return out
    t = credited_clicks(events, spec, since, end).to_pandas()
    out["exposures"] = {INTERLEAVED: len(t)}
    if len(t) < 2:
        out["verdict"] = {"decision": "no_data", "why": "Fewer than 2 shoppers saw its pages."}
        return out
    v = preference(t["won_a"].to_numpy(np.float64), t["won_b"].to_numpy(np.float64),
                   alpha=settings.alpha)  # fmt: skip
    out["interleaving"] = v.as_dict() | {
        "arms": [a, b],
        "pages": int(t["pages"].sum()),
        "clicks": [int(t["clicks_a"].sum()), int(t["clicks_b"].sum())],
        "won_pages": [int(t["won_a"].sum()), int(t["won_b"].sum())],
    }
    if v.winner is None:
        decision, why = (
            "inconclusive",
            (
                f"Shoppers preferred neither ranking: {v.wins_a} preferred {a}, {v.wins_b} {b} "
                f"(sign test p = {v.p_value:.2g}); keep it running."
            ),
        )
    else:
        best, worse = (b, a) if v.winner == "B" else (a, b)
        decision = "ship" if best == b else "no_ship"
        why = (
            f"Shoppers preferred {best} over {worse}: {max(v.wins_a, v.wins_b)} against "
            f"{min(v.wins_a, v.wins_b)} (sign test p = {v.p_value:.2g}; mean preference for "
            f"{a} {v.delta:+.3f})."
        )
    out["verdict"] = {"decision": decision, "why": why}
    return out
