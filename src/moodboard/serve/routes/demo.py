"""``GET /demo/shoppers``: shoppers a demo's visitor may shop as (``serve.demo_mode`` only).

Read-only and bounded: the ``k`` shoppers of the live build with the longest histories, each
with the size of their history. Outside demo mode the route answers 404 saying how to turn it
on: a real store's shoppers are never listed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from moodboard.errors import NotFoundError
from moodboard.serve.routes.common import engine_of

router = APIRouter(tags=["demo"])

#: The most shoppers one call lists.
MAX_SHOPPERS = 50


@router.get("/demo/shoppers", name="demo_shoppers")
def demo_shoppers(
    request: Request,
    k: Annotated[int, Query(ge=1, le=MAX_SHOPPERS, description="Shoppers to list.")] = 12,
) -> dict[str, Any]:
    """The shoppers with the longest histories in the live build (demo mode only)."""
    if not request.app.state.settings.serve.demo_mode:
        raise NotFoundError(
            "Shopping as another shopper is a demo feature: it is on only with "
            "serve.demo_mode = true (MOODBOARD_SERVE__DEMO_MODE=1), as `make demo` serves."
        )
    engine = engine_of(request)
    ranked = engine.__dict__.get("_demo_shoppers")
    if ranked is None:
        sizes = [(u, len(engine.history(u))) for u in engine.histories.users()]
        ranked = sorted((s for s in sizes if s[1] > 0), key=lambda s: (-s[1], s[0]))
        ranked = engine.__dict__["_demo_shoppers"] = ranked[:MAX_SHOPPERS]
    return {"shoppers": [{"id": u, "history": n} for u, n in ranked[:k]]}
