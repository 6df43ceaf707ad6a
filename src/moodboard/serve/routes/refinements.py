"""``GET /refinements``: refinement chips and related searches of a query
(``surfaces.refinements``).

The search chain runs for the query as ``/search`` runs it (the shopper's experiment arms
included), on the model thread; its results are split into chips, and random walks on the
query graph give the related searches. A blank query gets empty lists; a missing or too long
one, a bad ``k`` or filter a 422 saying what to fix.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from moodboard.data import new_request_id
from moodboard.serve.experiments import surfaces_for
from moodboard.serve.registry import Engine
from moodboard.serve.routes.common import Filters, arms_of, engine_of, item_filter, user_or_none
from moodboard.surfaces.refinements import Refinements, refinements
from moodboard.understand.threads import model_thread

router = APIRouter(tags=["surfaces"])


def _refine(engine: Engine, request: Request, q: str, user: str | None, k: int | None,
            filters: list[str] | None) -> Refinements:  # fmt: skip
    surfaces, _ = surfaces_for(engine, arms_of(request, user))
    search = surfaces["search"]
    cfg = search.config.refinements
    if k is not None:
        cfg = cfg.model_copy(update={"max_chips": k, "max_related": k})
    f = item_filter(engine, filters=filters)
    return refinements(search, q, user, item_filter=f, config=cfg)


@router.get("/refinements", name="refinements")
async def refinements_route(
    request: Request,
    q: Annotated[str, Query(max_length=500, description="The query (blank: empty lists).")],
    user: Annotated[
        str | None, Query(max_length=200, description="The shopper's id (unknown: anonymous).")
    ] = None,
    k: Annotated[
        int | None, Query(ge=1, le=50, description="Most chips and related searches (1..50).")
    ] = None,
    filters: Filters = None,
) -> JSONResponse:
    """Chips that split the query's results well, and related searches of the query."""
    if not q.strip():
        return JSONResponse(Refinements(new_request_id()).to_dict())
    engine = engine_of(request)
    got = await model_thread().call(_refine, engine, request, q, user_or_none(user), k, filters)
    return JSONResponse(got.to_dict())
