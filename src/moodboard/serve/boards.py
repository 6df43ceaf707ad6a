"""Boards for the API: create, read, add items; the workspace database is the store.

Adding an item is a ``save`` action: the route also logs a ``save`` event (with the board id)
to the write-ahead log, and compaction's ``INSERT OR IGNORE`` of board items from saves is
idempotent with the row written here.
"""

from __future__ import annotations

import uuid

from moodboard.data import Board
from moodboard.errors import NotFoundError
from moodboard.ingest import Workspace, workspace_write_lock


class BoardStore:
    """Boards in the workspace database.

    Parameters
    ----------
    ws
        The workspace.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def get(self, board_id: str) -> Board | None:
        """A board with its items in the order they were added, or None."""
        with self.ws.connect(read_only=True) as con:
            row = con.execute(
                "SELECT b.id, b.user_id, b.title, list(i.item_id ORDER BY i.added_at, i.item_id) "
                "FILTER (WHERE i.item_id IS NOT NULL) FROM boards b LEFT JOIN board_items i "
                "ON i.board_id = b.id WHERE b.id = ? GROUP BY ALL",
                [board_id],
            ).fetchone()
        if row is None:
            return None
        return Board(id=row[0], user_id=row[1], title=row[2], item_ids=tuple(row[3] or ()))

    def of_user(self, user_id: str) -> list[Board]:
        """A user's boards."""
        with self.ws.connect(read_only=True) as con:
            ids = con.execute(
                "SELECT id FROM boards WHERE user_id = ? ORDER BY created_at, id", [user_id]
            ).fetchall()
        return [b for (i,) in ids if (b := self.get(i)) is not None]

    def create(self, user_id: str, title: str | None) -> Board:
        """A new empty board with a fresh id."""
        board = Board(id=f"b-{uuid.uuid4().hex[:16]}", user_id=user_id, title=title)
        with workspace_write_lock(self.ws):
            self.ws.upsert_boards([board])
        return board

    def add(self, board_id: str, item_id: str) -> Board:
        """Add an item (adding it twice is a no-op); returns the board."""
        with workspace_write_lock(self.ws), self.ws.connect() as con:
            con.execute(
                "INSERT OR IGNORE INTO board_items VALUES (?, ?, now())", [board_id, item_id]
            )
        board = self.get(board_id)
        if board is None:
            raise NotFoundError(f"No board with id {board_id!r}: create it with POST /boards.")
        return board
