"""``GET /popular``: what is popular now (the home page, and every surface's fallback)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from moodboard.serve.routes.common import (
    Category,
    Filters,
    Paged,
    engine_of,
    item_filter,
    serve_surface_async,
)

router = APIRouter(tags=["surfaces"])


@router.get("/popular", name="popular")
async def popular(
    request: Request,
    p: Paged,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """What is popular now, within optional filters."""
    engine = engine_of(request)
    f = item_filter(engine, category=category, filters=filters)
    return await serve_surface_async(request, engine, "popular", p, item_filter=f)
