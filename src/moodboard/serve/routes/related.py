"""``GET /related/{item_id}``: products related to one product (its detail page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from moodboard.serve.routes.common import (
    ItemId,
    PageParams,
    engine_of,
    page_params,
    serve_surface,
)

router = APIRouter(tags=["surfaces"])

Page = Annotated[PageParams, Depends(page_params)]


@router.get("/related/{item_id:path}", name="related")
def related(request: Request, item_id: ItemId, p: Page) -> JSONResponse:
    """Content neighbours, co-engaged items and complements of one product."""
    engine = engine_of(request)
    return serve_surface(request, engine, "related", p, extra={"item_id": item_id}, item_id=item_id)
