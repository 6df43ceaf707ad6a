"""The surfaces' routes: search, popular, related, visual search, board ideas.

They are ``def`` routes: FastAPI runs them in its thread pool, so model inference and index
searches never block the event loop.
"""

from __future__ import annotations

import threading
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from moodboard.data import Candidates
from moodboard.errors import InputError, NotFoundError
from moodboard.rank import FEATURES, ItemTexts, QueryContext, SearchFeatures
from moodboard.serve.registry import Engine
from moodboard.serve.routes.common import (
    Category,
    Filters,
    ItemId,
    PageParams,
    check_k,
    engine_of,
    exclude_of,
    item_filter,
    item_index,
    page_params,
    parse_ints,
    respond,
    user_or_none,
)
from moodboard.surfaces.base import item_vectors

router = APIRouter(tags=["surfaces"])

Page = Annotated[PageParams, Depends(page_params)]


def _search_features(engine: Engine) -> SearchFeatures:
    """The ranking features of the live catalog, built on the first ``explain``."""
    feats = engine.__dict__.get("_search_features")
    if feats is None:
        vectors = item_vectors(engine.sources, "dense/text")
        feats = SearchFeatures(engine.catalog, ItemTexts.from_catalog(engine.catalog), vectors)
        engine.__dict__["_search_features"] = feats
    return feats


@router.get("/search", name="search")
def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=500, description="The query.")],
    p: Page,
    price_min: Annotated[float | None, Query(ge=0)] = None,
    price_max: Annotated[float | None, Query(ge=0)] = None,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """Search the catalog: understand -> retrieve -> fuse -> boost."""
    engine = engine_of(request)
    if not q.strip():
        raise InputError("The 'q' parameter must contain a word. Got only spaces instead.")
    f = item_filter(engine, price_min, price_max, category, filters)
    res = engine.search(q, k=p.start + p.k + 1, item_filter=f)
    parsed = res.parsed

    def features(page: Candidates) -> dict[str, np.ndarray]:
        vec = engine.search.encode([parsed.text or q])[0] if engine.search.encode else None
        ctx = QueryContext(
            text=parsed.text or q,
            vector=vec,
            colours=parsed.colours,
            genders=parsed.genders,
            article_types=parsed.article_types,
            intent=dict(parsed.intent),
            price_min=parsed.price_min,
            price_max=parsed.price_max,
        )
        X = _search_features(engine)(ctx, page)
        return {name: X[:, j] for j, name in enumerate(FEATURES)}

    extra = (
        {"query": parsed.model_dump(mode="json")}
        if p.explain
        else {"query": {"raw": parsed.raw, "corrected": parsed.corrected, **parsed.filters()}}
    )
    return respond(
        request,
        engine,
        res.candidates,
        p,
        surface="search",
        timings_ms=res.timings_ms,
        query=q,
        features=features,
        extra=extra,
    )


@router.get("/popular", name="popular")
def popular(
    request: Request,
    p: Page,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """What is popular now (the home page, and every surface's fallback)."""
    engine = engine_of(request)
    f = item_filter(engine, category=category, filters=filters)
    res = engine.popular(p.start + p.k + 1, item_filter=f)
    return respond(request, engine, res.candidates, p, surface="popular", timings_ms=res.timings_ms)


@router.get("/related/{item_id:path}", name="related")
def related(
    request: Request,
    item_id: ItemId,
    p: Page,
) -> JSONResponse:
    """Products related to one product (its detail page)."""
    engine = engine_of(request)
    res = engine.related(item_index(engine, item_id), p.start + p.k + 1)
    return respond(
        request, engine, res.candidates, p, surface="related", timings_ms=res.timings_ms,
        extra={"item_id": item_id},
    )  # fmt: skip


def _crop(crop: str | None) -> tuple[int, int, int, int] | None:
    """``x,y,w,h`` in pixels of the upload (ASCII digits), or None."""
    if crop is None or not crop.strip():
        return None
    x, y, w, h = parse_ints(crop, "crop", 4, "x,y,w,h such as 10,20,200,300")
    return x, y, w, h


_SLOTS_LOCK = threading.Lock()


def _decode_slots(request: Request) -> threading.BoundedSemaphore:
    """The app's bound on concurrent image decodes (``serve.max_concurrent_decodes``)."""
    state = request.app.state
    with _SLOTS_LOCK:
        slots = getattr(state, "decode_slots", None)
        if slots is None:
            slots = state.decode_slots = threading.BoundedSemaphore(
                state.settings.serve.max_concurrent_decodes
            )
    return slots


@router.post("/visual-search", name="visual")
def visual_search(
    request: Request,
    image: Annotated[
        UploadFile, File(description="A JPEG, PNG or WebP photo (serve.max_image_pixels).")
    ],
    crop: Annotated[
        str | None, Form(max_length=100, description="x,y,w,h in pixels of the image.")
    ] = None,
    category: Annotated[str | None, Form(max_length=200)] = None,
    k: Annotated[int, Form()] = 24,
    user: Annotated[str | None, Form(max_length=200)] = None,
    explain: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Products that look like a photo (or the cropped part of it)."""
    engine = engine_of(request)
    k = check_k(request, k)
    limit = int(request.app.state.settings.serve.max_upload_mb * 2**20)
    data = image.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"The upload is over the {limit / 2**20:g} MB limit.")
    if not data:
        raise InputError("The 'image' upload is empty: send a JPEG, PNG or WebP photo.")
    f = item_filter(engine, category=category)
    box = _crop(crop)
    serve = request.app.state.settings.serve
    slots = _decode_slots(request)
    if not slots.acquire(timeout=serve.decode_wait_s):
        raise HTTPException(
            503,
            f"{serve.max_concurrent_decodes} images are being decoded already "
            "(serve.max_concurrent_decodes): retry in a second.",
            headers={"Retry-After": "1"},
        )
    try:
        res = engine.visual(data, k + 1, crop=box, item_filter=f)
    finally:
        slots.release()
    p = PageParams(k, 0, user_or_none(user), explain)
    return respond(request, engine, res.candidates, p, surface="visual", timings_ms=res.timings_ms)


@router.get("/boards/{board_id}/ideas", name="board_ideas")
def board_ideas(
    request: Request,
    board_id: Annotated[str, PathParam(min_length=1, max_length=100)],
    p: Page,
) -> JSONResponse:
    """More ideas for a board: neighbours of what is on it, minus what is on it."""
    engine = engine_of(request)
    board = request.app.state.boards.get(board_id)
    if board is None:
        raise NotFoundError(f"No board with id {board_id!r}: create it with POST /boards.")
    items = exclude_of(engine, list(board.item_ids))
    res = engine.board(items, p.start + p.k + 1)
    if p.user is None:
        p = PageParams(p.k, p.start, board.user_id, p.explain)
    return respond(
        request, engine, res.candidates, p, surface="board", timings_ms=res.timings_ms,
        extra={"board_id": board_id},
    )  # fmt: skip
