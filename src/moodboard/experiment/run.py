"""Running the analysis of a workspace's experiments: reports, guardrail stops, and per-user
values from the logs for planning and for validating the statistics.

``report_experiment`` reads an experiment's data (``experiment.data``), analyses it
(``experiment.analysis``), stops it when a guardrail crossed its always-valid bound (the
report says why) and writes ``experiments/reports/<name>.json`` (what the dashboard reads)
and ``<name>.html`` (``experiment.report``). ``check_guardrails`` does so for every running
experiment: the server's periodic job. ``log_values`` gives per-user values of a metric from the
log's second half, with the first half as the CUPED covariate: what ``experiment plan`` reads
the metric's variance from and ``experiment aa`` resamples.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import ibis
import numpy as np

from moodboard.config import Settings
from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.experiment.analysis import analyze
from moodboard.experiment.data import load_data
from moodboard.experiment.interleave_report import interleaving_report
from moodboard.experiment.metrics import METRICS, event_log, merge_days, totals, user_days
from moodboard.experiment.report import render_report
from moodboard.experiment.store import ExperimentStore
from moodboard.experiment.validate import UserValues
from moodboard.ingest import Workspace
from moodboard.ingest.eventlog import atomic_write_bytes
from moodboard.pipelines.engine import connect
from moodboard.pipelines.interactions import datetime_us, epoch_us

_log = logging.getLogger(__name__)
Backend = Literal["duckdb", "spark"]


@dataclass(frozen=True)
class ReportFiles:
    """An experiment's analysis and where it was written."""

    analysis: dict[str, Any]
    json_path: Path
    html_path: Path


def report_experiment(
    ws: Workspace,
    name: str,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    engine: Backend = "duckdb",
    stop_on_guardrail: bool = True,
) -> ReportFiles:
    """Analyse experiment ``name`` as of ``as_of`` (default now), stop it if a guardrail
    crossed its bound, and write its report files.

    Raises
    ------
    NotFoundError
        If there is no experiment of that name.
    """
    store = ExperimentStore(ws.root, settings.experiment.declared)
    spec = store.get(name)
    when = as_of or datetime.now(UTC)
    if spec.kind == "interleave":
        result = interleaving_report(ws, spec, settings.experiment, when, engine)
    else:
        data = load_data(ws, spec, settings, as_of=when, engine=engine)
        result = analyze(data, settings.experiment, when)
    decision = result["verdict"]["decision"]
    declared = any(s.name == name for s in store.declared)
    if stop_on_guardrail and decision == "stopped_guardrail" and spec.status == "running":
        if declared:
            _log.error("experiment %s crossed a guardrail; it is declared in config: stop it "
                       "there (%s)", name, result["verdict"]["why"])  # fmt: skip
        else:
            spec = store.stop(name, f"guardrail: {result['verdict']['why']}", when)
            result["experiment"] = spec.model_dump(mode="json")
            _log.warning("experiment %s stopped: %s", name, result["verdict"]["why"])
    folder = store.folder / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / f"{name}.json", folder / f"{name}.html"
    atomic_write_bytes(json_path, json.dumps(result, indent=1, allow_nan=False).encode())
    atomic_write_bytes(html_path, render_report(result).encode())
    return ReportFiles(result, json_path, html_path)


def check_guardrails(ws: Workspace, settings: Settings) -> list[str]:
    """Report every running experiment (stopping those whose guardrail crossed); returns the
    names of the experiments it stopped. A failing report is logged, never stops the others."""
    store = ExperimentStore(ws.root, settings.experiment.declared)
    stopped = []
    for spec in store.load():
        if spec.status != "running":
            continue
        try:
            files = report_experiment(ws, spec.name, settings)
        except Exception as exc:  # one experiment's failure must not block the others
            _log.error("guardrail check of %s failed: %s", spec.name, exc)
            continue
        if files.analysis["experiment"]["status"] == "stopped":
            stopped.append(spec.name)
    return stopped


def log_values(
    ws: Workspace, settings: Settings, metric: str, engine: Backend = "duckdb"
) -> tuple[UserValues, dict[str, Any]]:
    """Per-user values of ``metric`` from the workspace's log: the shoppers shown a page in
    the log's second half (by time), their values from their first page there on, with
    their first-half values as the pre-period covariate; in the order they arrived.

    Returns
    -------
    tuple
        The values, and what they came from (``users``, ``since``, ``until``, ``metric``).

    Raises
    ------
    InputError
        If the metric is unknown or the log has fewer than 4 such shoppers.
    """
    m = METRICS.get(metric)
    if m is None:
        raise InputError(f"Unknown metric {metric!r}: choose among {', '.join(sorted(METRICS))}.")
    events = event_log(connect(engine), ws)
    if events is None:
        raise InputError(f"The event log of {ws.root} is empty: ingest or simulate events first.")
    products = ibis.memtable(ws.products_table().select([C.ID, C.PRICE, C.CATEGORY]))
    span = events.aggregate(lo=epoch_us(events[C.TS]).min(), hi=epoch_us(events[C.TS]).max())
    lo_us, hi_us = (int(v) for v in span.to_pandas().iloc[0])
    since = datetime.fromtimestamp(lo_us / 1e6, UTC)
    mid = datetime.fromtimestamp((lo_us + hi_us) / 2e6, UTC)
    until = datetime.fromtimestamp(hi_us / 1e6, UTC) + timedelta(microseconds=1)
    imp = events.filter(
        (events[C.TYPE] == "impression") & (epoch_us(events[C.TS]) >= datetime_us(mid))
    )
    users_t = imp.group_by(C.USER_ID).aggregate(exposed_us=epoch_us(imp[C.TS]).min()).cache()
    first = users_t.to_pandas().sort_values(["exposed_us", C.USER_ID])
    users = first[C.USER_ID].to_numpy(str)
    if len(users) < 4:
        raise InputError(
            f"The log of {ws.root} has {len(users)} shoppers shown a page in its second half: "
            "4 or more are needed (simulate or ingest more)."
        )
    surfaces = ("search", "related", "feed", "board", "visual")
    plain = users_t.select(C.USER_ID)
    post = merge_days(user_days(events, products, users_t, surfaces, mid, until))
    pre = merge_days(user_days(events, products, plain, surfaces, since, mid))
    now, before = totals(post, users), totals(pre, users)
    x = None if m.denominator is None else now[m.denominator]
    pre_y = before[m.numerator] if m.denominator is None else None
    values = UserValues(now[m.numerator], x, pre_y)
    info = {
        "metric": metric,
        "kind": m.kind,
        "users": len(users),
        "since": mid.isoformat(),
        "until": until.isoformat(),
        "mean": float(np.mean(now[m.numerator])),
        "variance": float(np.var(now[m.numerator], ddof=1)),
    }
    return values, info
