"""``GET /search``: the search surface (``prepare/search -> lexical/bm25 + dense/text ->
fuse/rrf -> rank/lambdamart -> blend/boost -> fallback/popular``; ``rank/noop`` when the
version has no trained ranker).

An ``async`` route that only checks its parameters: the page is made on the model thread
(``serve_surface_async``), so model inference and index searches never block the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from moodboard.data import Candidates
from moodboard.rank import (
    FEATURES,
    LAMBDAMART,
    ItemTexts,
    SearchFeatures,
    query_context,
    search_features,
)
from moodboard.serve.registry import Engine
from moodboard.serve.routes.common import (
    Category,
    Filters,
    Paged,
    engine_of,
    item_filter,
    serve_surface_async,
)
from moodboard.surfaces import SurfaceResult

router = APIRouter(tags=["surfaces"])


def _search_features(engine: Engine) -> SearchFeatures:
    """The ranking features of the live catalog: the served ranker's own, else built on the
    first ``explain`` the same way."""
    model = engine.search.env.resources.get(LAMBDAMART)
    if model is not None:
        return model.features
    feats = engine.__dict__.get("_search_features")
    if feats is None:
        texts = ItemTexts.from_catalog(engine.catalog)
        feats = search_features(engine.catalog, engine.sources, texts)
        engine.__dict__["_search_features"] = feats
    return feats


@router.get("/search", name="search")
async def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=500, description="The query.")],
    p: Paged,
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """Search the catalog: understand -> retrieve -> fuse -> rank -> boost -> fallback."""
    engine = engine_of(request)
    f = item_filter(engine, price_min, price_max, category, filters)

    def features(res: SurfaceResult) -> Any:
        ctx = res.prepared.context  # the parse and query vector the surface searched with

        def compute(page: Candidates) -> dict[str, np.ndarray]:
            qc = query_context(ctx["parsed"], ctx["vector"])
            encode = engine.search.env.resources.get("encode")
            if qc.vector is None and encode is not None:  # no dense source asked: embed now
                qc = query_context(ctx["parsed"], encode([qc.text])[0])
            X = _search_features(engine)(qc, page)
            return {name: X[:, j] for j, name in enumerate(FEATURES)}

        return compute  # called by the page, on the model thread

    def extra(res: SurfaceResult) -> dict[str, Any]:
        parsed = res.prepared.context["parsed"]
        if p.explain:
            return {"query": parsed.model_dump(mode="json")}
        return {"query": {"raw": parsed.raw, "corrected": parsed.corrected, **parsed.filters()}}

    return await serve_surface_async(
        request, engine, "search", p, logged_query=q, features=features, extra=extra,
        query=q, item_filter=f,
    )  # fmt: skip
