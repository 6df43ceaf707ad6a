"""``GET /search``: the search surface (``prepare/search -> lexical/bm25 + dense/text ->
fuse/rrf -> rank/noop -> blend/boost -> fallback/popular``).

A ``def`` route: FastAPI runs it in its thread pool, so model inference and index searches
never block the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from moodboard.data import Candidates
from moodboard.rank import FEATURES, ItemTexts, QueryContext, SearchFeatures
from moodboard.serve.registry import Engine
from moodboard.serve.routes.common import (
    Category,
    Filters,
    Paged,
    engine_of,
    item_filter,
    serve_surface,
)
from moodboard.surfaces import SurfaceResult

router = APIRouter(tags=["surfaces"])


def _search_features(engine: Engine) -> SearchFeatures:
    """The ranking features of the live catalog, built on the first ``explain``."""
    feats = engine.__dict__.get("_search_features")
    if feats is None:
        vectors = engine.search.env.item_vectors("dense/text")
        feats = SearchFeatures(engine.catalog, ItemTexts.from_catalog(engine.catalog), vectors)
        engine.__dict__["_search_features"] = feats
    return feats


@router.get("/search", name="search")
def search(
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
        ctx = res.prepared.context
        parsed = ctx["parsed"]
        text = parsed.text or q
        vec = ctx["vector"] if text == ctx["text"] else None  # the query's own embedding

        def compute(page: Candidates) -> dict[str, np.ndarray]:
            encode = engine.search.env.resources.get("encode")
            vector = vec if vec is not None or encode is None else encode([text])[0]
            qc = QueryContext(
                text=text,
                vector=vector,
                colours=parsed.colours,
                genders=parsed.genders,
                article_types=parsed.article_types,
                intent=dict(parsed.intent),
                price_min=parsed.price_min,
                price_max=parsed.price_max,
            )
            X = _search_features(engine)(qc, page)
            return {name: X[:, j] for j, name in enumerate(FEATURES)}

        return compute

    def extra(res: SurfaceResult) -> dict[str, Any]:
        parsed = res.prepared.context["parsed"]
        if p.explain:
            return {"query": parsed.model_dump(mode="json")}
        return {"query": {"raw": parsed.raw, "corrected": parsed.corrected, **parsed.filters()}}

    return serve_surface(
        request, engine, "search", p, logged_query=q, features=features, extra=extra,
        query=q, item_filter=f,
    )  # fmt: skip
