"""``GET /surfaces/{name}``: any surface declared in ``[surfaces]``, built-in or new.

A new surface needs no route of its own: its config entry names its ``prepare`` step, and
this route hands the step what the request carries (``q``, ``item``, ``board``, ``session``,
filters); the built-in routes (``/search``, ``/related/...``) stay the surfaces' own URLs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from moodboard.errors import InputError, NotFoundError
from moodboard.serve.routes.common import (
    Category,
    Filters,
    Paged,
    engine_of,
    item_filter,
    serve_surface_async,
)

router = APIRouter(tags=["surfaces"])

#: Surfaces whose request cannot travel in a query string, and where to send it instead.
_NOT_BY_GET = {"visual": "POST /visual-search with the photo"}


@router.get("/surfaces/{name}", name="surface")
async def surface(
    request: Request,
    name: Annotated[str, PathParam(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_\-]+$")],
    p: Paged,
    q: Annotated[str | None, Query(max_length=500, description="A query text.")] = None,
    item: Annotated[str | None, Query(max_length=500, description="A product id.")] = None,
    board: Annotated[str | None, Query(max_length=100, description="A board id.")] = None,
    session: Annotated[
        str | None, Query(max_length=200, description="Request key of seeded randomness.")
    ] = None,
    category: Category = None,
    filters: Filters = None,
) -> JSONResponse:
    """One page of the surface ``name``, as its declared chain makes it."""
    engine = engine_of(request)
    if name in _NOT_BY_GET:
        raise InputError(f"The {name!r} surface takes an upload: use {_NOT_BY_GET[name]}.")
    items: tuple[str, ...] = ()
    if board is not None:
        saved = await run_in_threadpool(request.app.state.boards.get, board)  # a DuckDB read
        if saved is None:
            raise NotFoundError(f"No board with id {board!r}: create it with POST /boards.")
        items = tuple(saved.item_ids)
    f = item_filter(engine, category=category, filters=filters)
    return await serve_surface_async(
        request, engine, name, p, logged_query=q, query=q, item_id=item, board_id=board,
        items=items, session=session, item_filter=f,
    )  # fmt: skip
