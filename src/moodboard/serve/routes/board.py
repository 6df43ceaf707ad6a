"""``GET /boards/{board_id}/ideas``: more ideas for a saved board."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from moodboard.errors import NotFoundError
from moodboard.serve.routes.common import Paged, engine_of, for_user, serve_surface_async

router = APIRouter(tags=["surfaces"])


@router.get("/boards/{board_id}/ideas", name="board_ideas")
async def board_ideas(
    request: Request,
    board_id: Annotated[str, PathParam(min_length=1, max_length=100)],
    p: Paged,
) -> JSONResponse:
    """More ideas for a board: neighbours of what is on it, minus what is on it."""
    engine = engine_of(request)
    board = await run_in_threadpool(request.app.state.boards.get, board_id)  # a DuckDB read
    if board is None:
        raise NotFoundError(f"No board with id {board_id!r}: create it with POST /boards.")
    if p.user is None:
        p = for_user(request, p, board.user_id)
    return await serve_surface_async(
        request, engine, "board", p, extra={"board_id": board_id},
        board_id=board_id, items=tuple(board.item_ids),
    )  # fmt: skip
