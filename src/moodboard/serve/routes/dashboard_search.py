"""``GET /dashboard/search``: the dashboard's Search page (operator only, as ``/dashboard``):
top, zero-result and low-engagement queries, click-through by position, searches per via and
the reformulation rate (``experiment.search_analytics``), with its plots inline.

The analysis reads the event log with Ibis, so it is imported on the first view only (a server
nobody asks for it never loads the pipelines), and kept ``search_analytics.cache_ttl_s``
seconds per window: a busy dashboard does not rescan the log on every view.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from moodboard.serve.auth import require_operator
from moodboard.serve.web import templates

_log = logging.getLogger(__name__)

router = APIRouter(
    include_in_schema=False,
    default_response_class=HTMLResponse,
    dependencies=[Depends(require_operator)],
)
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
#: (workspace, days) -> (when computed, analysis dict, plots)
_CACHE: dict[tuple[str, int], tuple[float, dict[str, Any], dict[str, str]]] = {}
_LOCK = threading.Lock()


def search_analysis(request: Request, days: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The analysis of the last ``days`` and its plots, from the cache while fresh."""
    settings = request.app.state.settings
    cfg = settings.search_analytics.model_copy(update={"window_days": days})
    key = (str(request.app.state.ws.root), days)
    with _LOCK:  # one computation at a time; the others wait for its result
        hit = _CACHE.get(key)
        if hit is not None and time.monotonic() - hit[0] < cfg.cache_ttl_s:
            return hit[1], hit[2]
        from moodboard.experiment.search_analytics import analyze_search
        from moodboard.experiment.search_plots import search_svgs

        analysis = analyze_search(request.app.state.ws, cfg).to_dict()
        plots = search_svgs(analysis)
        _CACHE[key] = (time.monotonic(), analysis, plots)
        return analysis, plots


@router.get("/dashboard/search", name="dashboard_search")
def dashboard_search(
    request: Request,
    days: Annotated[
        int | None, Query(ge=1, le=3660, description="Days analysed (default: the config's).")
    ] = None,
) -> HTMLResponse:
    """The Search page; 503 with ``Retry-After`` when the event log cannot be read now."""
    days = days or request.app.state.settings.search_analytics.window_days
    context: dict[str, Any] = {"page": "dashboard", "user": "", "public_key": "", "days": days,
                               "demo": request.app.state.settings.serve.demo_mode}  # fmt: skip
    try:
        analysis, plots = search_analysis(request, days)
    except Exception as exc:  # the page says why instead of failing the dashboard
        _log.error("search analytics failed: %s", exc)
        context |= {"error": str(exc), "a": None, "plots": {}}
        headers = {**_HEADERS, "Retry-After": "30"}
        return templates.TemplateResponse(
            request, "dashboard_search.html", context, status_code=503, headers=headers
        )
    context |= {"error": None, "a": analysis, "plots": plots}
    return templates.TemplateResponse(request, "dashboard_search.html", context, headers=_HEADERS)
