"""Products, their images, and boards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Board
from moodboard.errors import InputError, NotFoundError
from moodboard.serve.auth import Caller, require_board_writer, require_json
from moodboard.serve.pages import item_json
from moodboard.serve.routes.common import engine_of, item_index

router = APIRouter(tags=["catalog"])

UserId = Annotated[str, Field(min_length=1, max_length=200)]
BoardWriter = Annotated[Caller, Depends(require_board_writer)]


@router.get("/products/{item_id}", name="product")
def product(request: Request, item_id: str) -> dict[str, Any]:
    """One product of the live catalog."""
    engine = engine_of(request)
    i = item_index(engine, item_id)
    cat = engine.catalog
    return item_json(cat, i) | {
        "description": cat.description[i],
        "attributes": {a: v[i] for a, v in cat.attributes.items() if v[i] is not None},
    }


@router.get("/images/{item_id}", name="image", response_class=FileResponse)
def image(request: Request, item_id: str) -> FileResponse:
    """A product's image file."""
    engine = engine_of(request)
    i = item_index(engine, item_id)
    path = engine.catalog.image[i]
    if not path or not Path(path).is_file():
        raise NotFoundError(f"Product {item_id!r} has no image file.")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


class NewBoard(BaseModel):
    """``POST /boards``: ``user_id`` names the owner (a shopper's session implies their own)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    title: str | None = Field(default=None, max_length=200)


class NewBoardItem(BaseModel):
    """``POST /boards/{id}/items``: a save, joined to the page it came from by request_id."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1)
    user_id: UserId | None = None
    request_id: str | None = None
    position: int | None = Field(default=None, ge=1)
    surface: str | None = None


def _board_json(board: Board) -> dict[str, Any]:
    return {
        "id": board.id,
        "user_id": board.user_id,
        "title": board.title,
        "item_ids": list(board.item_ids),
    }


@router.post("/boards", name="board_create", status_code=201, dependencies=[Depends(require_json)])
def create_board(request: Request, caller: BoardWriter, body: NewBoard) -> dict[str, Any]:
    """A new, empty board, owned by the session's shopper or, with a key, by ``user_id``."""
    owner = caller.user_for(body.user_id)
    if owner is None:
        raise InputError("The 'user_id' field is required with a key: name the board's owner.")
    return _board_json(request.app.state.boards.create(owner, body.title))


@router.get("/boards/{board_id}", name="board")
def get_board(request: Request, board_id: str) -> dict[str, Any]:
    """A board and its items."""
    board = request.app.state.boards.get(board_id)
    if board is None:
        raise NotFoundError(f"No board with id {board_id!r}: create it with POST /boards.")
    return _board_json(board)


@router.get("/users/{user_id}/boards", name="user_boards")
def user_boards(request: Request, user_id: str) -> dict[str, Any]:
    """A user's boards."""
    return {"boards": [_board_json(b) for b in request.app.state.boards.of_user(user_id)]}


@router.post(
    "/boards/{board_id}/items",
    name="board_add",
    status_code=201,
    dependencies=[Depends(require_json)],
)
def add_to_board(
    request: Request, caller: BoardWriter, board_id: str, body: NewBoardItem
) -> dict[str, Any]:
    """Save a product to a board; logged durably as a ``save`` event before the answer."""
    store = request.app.state.boards
    board = store.get(board_id)
    if board is None:
        raise NotFoundError(f"No board with id {board_id!r}: create it with POST /boards.")
    caller.check_owner(board.user_id, board_id)
    user_id = caller.user_for(body.user_id)
    item_index(engine_of(request), body.item_id)
    event = {
        "event_id": uuid.uuid4().hex,
        "ts": datetime.now(UTC).isoformat(),
        "user_id": user_id or board.user_id,
        "type": "save",
        "item_id": body.item_id,
        "surface": body.surface,
        "position": body.position,
        "request_id": body.request_id,
        "board_id": board_id,
    }
    # The board first: when the database is busy (503), nothing is logged and the client's
    # retry does both; adding an item twice is a no-op.
    board = store.add(board_id, body.item_id)
    report = request.app.state.wal.accept([event])
    request.app.state.metrics.events.labels("save").inc(report.accepted)
    return _board_json(board) | {"event_id": event["event_id"]}
