"""Products, their images, and boards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from moodboard.data import Board
from moodboard.errors import InputError, NotFoundError
from moodboard.serve.auth import Caller, require_board_writer, require_json
from moodboard.serve.images import served_image
from moodboard.serve.pages import item_json
from moodboard.serve.routes.common import ItemId, check_k, engine_of, item_index, parse_cursor

router = APIRouter(tags=["catalog"])

BoardWriter = Annotated[Caller, Depends(require_board_writer)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain a character other than spaces")
    return value


UserId = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
#: An optional user id: only spaces is no user (the board's owner is used).
OptionalUserId = Annotated[
    Annotated[str, Field(max_length=200)] | None,
    BeforeValidator(lambda v: None if isinstance(v, str) and not v.strip() else v),
]
#: A board id in a path (ours look like ``b-0123456789abcdef``).
BoardId = Annotated[str, PathParam(min_length=1, max_length=100)]


@router.get("/products/{item_id:path}", name="product")
def product(request: Request, item_id: ItemId) -> dict[str, Any]:
    """One product of the live catalog."""
    engine = engine_of(request)
    i = item_index(engine, item_id)
    cat = engine.catalog
    return item_json(cat, i) | {
        "description": cat.description[i],
        "attributes": {a: v[i] for a, v in cat.attributes.items() if v[i] is not None},
    }


@router.get("/images/{item_id:path}", name="image", response_class=FileResponse)
def image(request: Request, item_id: ItemId) -> FileResponse:
    """A product's image file (JPEG, PNG or WebP inside the folders ingestion accepted)."""
    engine = engine_of(request)
    i = item_index(engine, item_id)
    path = served_image(request.app.state.ws.root, engine.catalog.image[i])
    if path is None:
        raise NotFoundError(f"Product {item_id!r} has no image file.")
    real, media_type = path
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(real, media_type=media_type, headers=headers)


class NewBoard(BaseModel):
    """``POST /boards``: ``user_id`` names the owner (a shopper's session implies their own)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    title: str | None = Field(default=None, max_length=200)


class NewBoardItem(BaseModel):
    """``POST /boards/{id}/items``: a save, joined to the page it came from by request_id."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=500)
    user_id: OptionalUserId = None
    request_id: str | None = Field(default=None, max_length=100)
    position: int | None = Field(default=None, ge=1, le=1_000_000)
    surface: str | None = Field(default=None, max_length=50)


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
    cap = request.app.state.settings.serve.max_boards_per_user
    return _board_json(request.app.state.boards.create(owner, body.title, cap))


@router.get("/boards/{board_id}", name="board")
def get_board(request: Request, board_id: BoardId) -> dict[str, Any]:
    """A board and its items."""
    board = request.app.state.boards.get(board_id)
    if board is None:
        raise NotFoundError(f"No board with id {board_id!r}: create it with POST /boards.")
    return _board_json(board)


@router.get("/users/{user_id:path}/boards", name="user_boards")
def user_boards(
    request: Request,
    user_id: Annotated[str, PathParam(min_length=1, max_length=200)],
    k: Annotated[
        int | None, Query(description="Boards per page (1..serve.max_k; default max_k).")
    ] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> dict[str, Any]:
    """A user's boards, oldest first, ``k`` at a time."""
    k = check_k(request, request.app.state.settings.serve.max_k if k is None else k)
    start = parse_cursor(cursor, request.app.state.settings.serve.max_offset)
    boards = request.app.state.boards.of_user(user_id, start, k + 1)
    more = len(boards) > k
    return {
        "boards": [_board_json(b) for b in boards[:k]],
        "next_cursor": str(start + k) if more else None,
    }


@router.post(
    "/boards/{board_id}/items",
    name="board_add",
    status_code=201,
    dependencies=[Depends(require_json)],
)
def add_to_board(
    request: Request, caller: BoardWriter, board_id: BoardId, body: NewBoardItem
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
