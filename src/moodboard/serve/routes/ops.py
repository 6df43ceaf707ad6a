"""Events in, health, metrics and the artifact reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field

from moodboard.serve.auth import (
    require_admin,
    require_event_writer,
    require_json,
    require_metrics_reader,
)

router = APIRouter(tags=["ops"])

#: Most events one POST may carry.
MAX_EVENTS = 10_000


class EventBatch(BaseModel):
    """``POST /events``: a batch of events in the event-file layout (``event_id`` and ``ts``
    are filled in when missing). Fields other than the core columns are kept verbatim in the
    event's ``props`` (merged with a ``props`` object it sends); their names and sizes are
    checked with the other named checks (``field_names_distinct``, ``field_names_allowed``,
    ``field_limits``)."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_EVENTS)


@router.post(
    "/events", name="events", dependencies=[Depends(require_event_writer), Depends(require_json)]
)
def post_events(request: Request, batch: EventBatch) -> JSONResponse:
    """Validate a batch like file ingestion and append it durably before answering.

    All or nothing: when a row fails a check, nothing is stored, the bad rows are quarantined
    with their reasons, and the 422 lists them so the client can fix and resend. An
    ``event_id`` the batch repeats is stored and counted once and listed under ``duplicates``.
    """
    report = request.app.state.wal.accept(batch.events)
    if report.errors:
        return JSONResponse(
            {
                "detail": f"{len(report.errors)} of {len(batch.events)} events failed the "
                "checks; nothing was stored. Fix these rows and send the batch again.",
                "errors": report.errors[:100],
            },
            status_code=422,
        )
    request.app.state.metrics.events.labels("api").inc(report.accepted)
    request.app.state.recent.add(batch.events)  # the next page follows them, before a build
    return JSONResponse(
        {
            "accepted": report.accepted,
            "event_ids": list(report.event_ids),
            "duplicates": list(report.duplicates),
        }
    )


@router.get("/healthz", name="healthz")
async def healthz(request: Request) -> JSONResponse:
    """200 when an artifact is live, 503 before the first build."""
    live = request.app.state.live
    ok = live.version is not None
    return JSONResponse(
        {"status": "ok" if ok else "no artifact", "artifact": live.version},
        status_code=200 if ok else 503,
    )


@router.get(
    "/metrics",
    name="metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_metrics_reader)],
)
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text: requests, latency per surface, events, artifact version."""
    m = request.app.state.metrics
    m.set_version(request.app.state.live.version)
    return PlainTextResponse(m.render(), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reload", name="reload", dependencies=[Depends(require_admin)])
def reload(request: Request) -> dict[str, Any]:
    """Swap to the version ``CURRENT`` names now (the server also polls it).

    503 with ``Retry-After`` when that version fails to load (or failed recently and is
    backing off): the answer says which version and why, and the old version keeps serving.
    """
    swap = request.app.state.live.reload()
    return {"artifact": swap.version, "previous": swap.previous, "swapped": swap.swapped}
