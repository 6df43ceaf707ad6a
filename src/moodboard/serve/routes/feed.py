"""``GET /feed/{user_id}``: a user's home feed, logged as impressions of that user.

A user the live artifact knows gets the fused personalized sources minus what they engaged
with; any other id (anonymous, new) gets popular items and an exploration slice, never an
error. Exploration is seeded by (user, ``session``): pages of one session continue each other;
without a ``session`` the key is the UTC day.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from moodboard.serve.routes.common import (
    ANONYMOUS,
    Category,
    Filters,
    Paged,
    engine_of,
    for_user,
    item_filter,
    serve_surface_async,
    user_or_none,
)
from moodboard.surfaces import SurfaceResult

router = APIRouter(tags=["surfaces"])


@router.get("/feed/{user_id:path}", name="feed")
async def feed(
    request: Request,
    user_id: Annotated[str, Path(min_length=1, max_length=200, description="The shopper.")],
    p: Paged,
    session: Annotated[
        str | None,
        Query(max_length=200, description="Request key of the exploration slice (default: day)."),
    ] = None,
    category: Category = None,
    filters: Filters = None,
    modules: Annotated[
        bool | None,
        Query(description="Rows of modules before the grid (default: surfaces.feed.modules)."),
    ] = None,
) -> JSONResponse:
    """The home feed of a user: personalized for known users, popular + explore otherwise;
    with modules, rows of modules ("more like your board X", ...) first, named by the page's
    ``modules`` (ranges of ``items``, each with the propensity its row was drawn with)."""
    engine = engine_of(request)
    f = item_filter(engine, category=category, filters=filters)
    user_id = user_or_none(user_id) or ANONYMOUS  # whitespace alone: an anonymous shopper
    p = for_user(request, p, user_id)

    def extra(res: SurfaceResult) -> dict[str, Any]:
        return {"user_id": user_id, "personalized": res.prepared.context["personalized"]}

    # no session: the surface keys exploration by the request's UTC day
    return await serve_surface_async(
        request,
        engine,
        "feed",
        p,
        extra=extra,
        session=session or None,
        item_filter=f,
        modules=modules,
    )
