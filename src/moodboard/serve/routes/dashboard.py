"""``/dashboard``: the operator pages: experiments and their verdicts, data health, the live
artifact and request latency.

They show internals (experiments, catalog and event counts, the manifest), so they need the
admin key (``auth.require_operator``): a browser opens ``/dashboard?key=<admin key>`` once
and is redirected to ``/dashboard`` with an operator cookie (12 hours); a script sends
``Authorization: Bearer <admin key>``. The key is ``serve.admin_key``, or the one generated
into ``<workspace>/serve-keys.json``.

- ``GET /dashboard``: every experiment (layer, arms and weights, status, window) with the
  verdict of its stored analysis, catalog and event health (``Workspace.status``), the live
  artifact's version and the metrics its manifest recorded, and request latency per surface
  (p50/p95 estimated from the server's Prometheus histogram).
- ``GET /dashboard/experiments/{name}``: the full report (``experiment.report``) of the
  analysis stored in ``<workspace>/experiments/reports/<name>.json``; 404 saying how to make
  it when there is none yet.
"""

from __future__ import annotations

import json
import logging
import math
from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse
from prometheus_client import Histogram

from moodboard.errors import InputError, MoodboardError, NotFoundError
from moodboard.experiment.report import render_report
from moodboard.experiment.spec import NAME
from moodboard.serve.auth import require_operator
from moodboard.serve.web import templates

_log = logging.getLogger(__name__)

router = APIRouter(
    include_in_schema=False,
    default_response_class=HTMLResponse,
    dependencies=[Depends(require_operator)],
)

#: The largest stored analysis read (days x metrics x segments stay well under it).
MAX_REPORT_BYTES = 32 * 2**20
#: Manifest entries that are not metrics (parameters, where the files are).
_NOT_METRICS = frozenset({"path", "config", "component"})
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: Report pages may hold inline styles and SVG only: nothing runs, nothing is fetched.
_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

ExperimentName = Annotated[
    str, Path(pattern=NAME, description="The experiment's name (letters, digits, _ and -).")
]


def report_path(request: Request, name: str) -> FilePath:
    """Where the stored analysis of experiment ``name`` is."""
    return request.app.state.experiments.store.folder / "reports" / f"{name}.json"


def read_analysis(path: FilePath) -> dict[str, Any] | None:
    """The stored analysis at ``path`` (None when there is none).

    Raises
    ------
    InputError
        If the file is too large or not a JSON object (the message says how to remake it).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size > MAX_REPORT_BYTES:
        raise InputError(f"{path.name} is over {MAX_REPORT_BYTES >> 20} MB: remake it.")
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name} is not JSON ({exc}): remake it.") from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name} is not a JSON object: remake it.")
    return data


@lru_cache(maxsize=16)
def _rendered(path: str, mtime_ns: int, size: int) -> str:
    """The report page of one version of a stored analysis (drawing plots takes ~0.5 s)."""
    analysis = read_analysis(FilePath(path))
    if analysis is None:
        raise NotFoundError(f"{FilePath(path).name} disappeared: reload the page.")
    return render_report(analysis)


def _verdict(request: Request, name: str) -> dict[str, Any]:
    """The stored verdict of ``name``: ``{"state": "none"|"ok"|"error", ...}``."""
    try:
        analysis = read_analysis(report_path(request, name))
    except (MoodboardError, OSError) as exc:
        return {"state": "error", "why": str(exc)}
    if analysis is None:
        return {"state": "none"}
    verdict = analysis.get("verdict") or {}
    return {
        "state": "ok",
        "decision": str(verdict.get("decision") or "no_data"),
        "why": str(verdict.get("why") or ""),
        "as_of": str(analysis.get("as_of") or ""),
    }


def _experiments(request: Request) -> tuple[list[dict[str, Any]], str | None]:
    try:
        specs = request.app.state.experiments.store.load()
    except MoodboardError as exc:
        return [], str(exc)
    rows = []
    for spec in sorted(specs, key=lambda s: (s.status != "running", s.name)):
        rows.append(
            {
                "name": spec.name,
                "layer": spec.layer,
                "traffic": spec.traffic,
                "arms": [(a.name, a.weight, a.name == spec.control_arm) for a in spec.arms],
                "status": spec.status,
                "start": spec.start.isoformat() if spec.start else None,
                "stop": spec.stop.isoformat() if spec.stop else None,
                "stopped_reason": spec.stopped_reason,
                "verdict": _verdict(request, spec.name),
            }
        )
    return rows, None


def _health(request: Request) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return request.app.state.ws.status(), None
    except (MoodboardError, OSError) as exc:
        return None, f"unavailable right now: {exc}"


def _flat_metrics(entry: dict[str, Any]) -> list[tuple[str, Any]]:
    """A manifest entry's recorded numbers (and trained/reason), one level of dicts flattened."""
    out: list[tuple[str, Any]] = []
    for key, value in entry.items():
        if key in _NOT_METRICS:
            continue
        if isinstance(value, bool | int | float) or (isinstance(value, str) and key == "reason"):
            out.append((key, value))
        elif isinstance(value, dict):
            out.extend((f"{key}.{k}", v) for k, v in value.items() if isinstance(v, int | float))
    return out


def _artifact(request: Request) -> dict[str, Any] | None:
    live = request.app.state.live
    if live.version is None:
        return None
    try:
        engine = live.engine
    except MoodboardError:
        return None
    manifest = getattr(engine, "manifest", None) or {}
    components = manifest.get("components") or {}
    return {
        "version": engine.version,
        "created_at": manifest.get("created_at"),
        "data": manifest.get("data") or {},
        "components": [(name, _flat_metrics(entry)) for name, entry in components.items() if entry],
        "timings": manifest.get("timings_s") or {},
    }


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The ``q`` quantile estimated from cumulative histogram buckets ``(upper bound, count)``
    sorted by bound, interpolating linearly inside the bucket it falls in (as Prometheus'
    ``histogram_quantile``); past the last finite bound, that bound."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def latency_table(histogram: Histogram) -> list[dict[str, Any]]:
    """Per surface (route): requests, p50 and p95 in ms, mean in ms, busiest first."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for metric in histogram.collect():
        for s in metric.samples:
            surface = s.labels.get("surface", "?")
            if s.name.endswith("_bucket"):
                buckets.setdefault(surface, []).append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                counts[surface] = s.value
            elif s.name.endswith("_sum"):
                sums[surface] = s.value
    rows = []
    for surface, b in buckets.items():
        b.sort()
        n = counts.get(surface, 0.0)
        p50, p95 = quantile(b, 0.5), quantile(b, 0.95)
        rows.append(
            {
                "surface": surface,
                "requests": int(n),
                "p50_ms": None if p50 is None else p50 * 1000,
                "p95_ms": None if p95 is None else p95 * 1000,
                "mean_ms": sums.get(surface, 0.0) / n * 1000 if n else None,
            }
        )
    return sorted(rows, key=lambda r: (-r["requests"], r["surface"]))


@router.get("/dashboard", name="dashboard")
def dashboard(request: Request) -> HTMLResponse:
    """The operator page: experiments and verdicts, data health, artifact, latency."""
    experiments, experiments_error = _experiments(request)
    health, health_error = _health(request)
    context = {
        "page": "dashboard",
        "user": "",
        "public_key": "",
        "demo": request.app.state.settings.serve.demo_mode,
        "experiments": experiments,
        "experiments_error": experiments_error,
        "health": health,
        "health_error": health_error,
        "artifact": _artifact(request),
        "latency": latency_table(request.app.state.metrics.latency),
    }
    return templates.TemplateResponse(request, "dashboard.html", context, headers=_HEADERS)


@router.get("/dashboard/experiments/{name}", name="dashboard_experiment")
def experiment_report(request: Request, name: ExperimentName) -> HTMLResponse:
    """The full report of experiment ``name``'s stored analysis.

    Raises
    ------
    NotFoundError
        If there is no stored analysis of that name (404 saying how to make one).
    HTTPException
        500 if the stored analysis is unreadable (the message says to remake it).
    """
    path = report_path(request, name)
    try:
        st = path.stat()
    except FileNotFoundError:
        known = sorted(s.name for s in request.app.state.experiments.store.load())
        if name not in known:
            raise NotFoundError(
                f"No experiment named {name!r}. Experiments: {', '.join(known) or 'none yet'}."
            ) from None
        raise NotFoundError(
            f"Experiment {name!r} has no report yet: run `moodboard experiment report {name}` "
            "to analyse it; its report then shows here."
        ) from None
    try:
        html = _rendered(str(path), st.st_mtime_ns, st.st_size)
    except NotFoundError:
        raise
    except (MoodboardError, ValueError, OSError) as exc:
        _log.error("report of %s unreadable: %s", name, exc)
        raise HTTPException(
            500,
            f"The stored analysis of {name!r} cannot be shown ({exc}). Run `moodboard "
            f"experiment report {name}` to remake it.",
        ) from None
    headers = {**_HEADERS, "Content-Security-Policy": _REPORT_CSP}
    return HTMLResponse(html, headers=headers)
