"""``GET /popular``: what is popular now (the home page, and every surface's fallback)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from moodboard.serve.routes.common import (
    Category,
    Filters,
    PageParams,
    engine_of,
    item_filter,
    page_params,
    serve_surface,
)

router = APIRouter(tags=["surfaces"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("/popular", name="popular")
def popular(
    request: Request,
    p: Page,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """What is popular now, within optional filters."""
    engine = engine_of(request)
    f = item_filter(engine, category=category, filters=filters)
    return serve_surface(request, engine, "popular", p, item_filter=f)
