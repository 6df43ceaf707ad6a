"""``GET /related/{item_id}``: products related to one product (its detail page)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from moodboard.serve.routes.common import (
    ItemId,
    Paged,
    engine_of,
    serve_surface_async,
)

router = APIRouter(tags=["surfaces"])


@router.get("/related/{item_id:path}", name="related")
async def related(request: Request, item_id: ItemId, p: Paged) -> JSONResponse:
    """Content neighbours, co-engaged items and complements of one product."""
    engine = engine_of(request)
    return await serve_surface_async(
        request, engine, "related", p, extra={"item_id": item_id}, item_id=item_id
    )
