"""``GET /feed/{user_id}``: a user's home feed, logged as impressions of that user.

A user the live artifact knows gets the fused personalized sources minus what they engaged
with; any other id (anonymous, new) gets popular items and an exploration slice, never an
error. Exploration is seeded by (user, ``session``): pages of one session continue each other;
without a ``session`` the key is the UTC day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from moodboard.serve.routes.common import (
    ANONYMOUS,
    Category,
    Filters,
    PageParams,
    engine_of,
    item_filter,
    page_params,
    respond,
    user_or_none,
)

router = APIRouter(tags=["surfaces"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("/feed/{user_id:path}", name="feed")
def feed(
    request: Request,
    user_id: Annotated[str, Path(min_length=1, max_length=200, description="The shopper.")],
    p: Page,
    session: Annotated[
        str | None,
        Query(max_length=200, description="Request key of the exploration slice (default: day)."),
    ] = None,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """The home feed of a user: personalized for known users, popular + explore otherwise."""
    engine = engine_of(request)
    f = item_filter(engine, category=category, filters=filters)
    user_id = user_or_none(user_id) or ANONYMOUS  # whitespace alone: an anonymous shopper
    history = engine.history(user_id)
    nonce = session or datetime.now(UTC).date().isoformat()
    weights = engine.histories.weights(user_id)
    res = engine.feed(
        history, p.start + p.k + 1, user=user_id, nonce=nonce, item_filter=f, weights=weights
    )
    p = PageParams(p.k, p.start, user_id, p.explain)
    extra = {"user_id": user_id, "personalized": bool(len(history) and engine.feed.personalized)}
    return respond(
        request, engine, res.candidates, p, surface="feed", timings_ms=res.timings_ms, extra=extra
    )
