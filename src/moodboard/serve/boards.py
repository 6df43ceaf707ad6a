"""Boards for the API: create, read, add items; the workspace database is the store.

Adding an item is a ``save`` action: the route also logs a ``save`` event (with the board id)
to the write-ahead log, and compaction's ``INSERT OR IGNORE`` of board items from saves is
idempotent with the row written here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict

from moodboard.data import Board
from moodboard.errors import InputError, NotFoundError
from moodboard.ingest import Workspace, workspace_write_lock

#: Boards with their items in the order they were added; ``where`` and ``page`` filled in.
_BOARDS_SQL = (
    "SELECT b.id, b.user_id, b.title, list(i.item_id ORDER BY i.added_at, i.item_id) "
    "FILTER (WHERE i.item_id IS NOT NULL) FROM boards b LEFT JOIN board_items i "
    "ON i.board_id = b.id WHERE {where} GROUP BY b.id, b.user_id, b.title, b.created_at "
    "ORDER BY b.created_at, b.id{page}"
)


class BoardStore:
    """Boards in the workspace database.

    Parameters
    ----------
    ws
        The workspace.
    ttl_s
        How long ``newest`` (the home page's modules, on every feed page) keeps a user's
        boards before reading them again; this store's own writes refresh them at once.
    users
        The most users ``newest`` keeps (least recently used leave first).
    """

    def __init__(self, ws: Workspace, ttl_s: float = 30.0, users: int = 10_000) -> None:
        self.ws = ws
        self.ttl_s = ttl_s
        self.users = users
        self._newest: OrderedDict[tuple[str, int], tuple[float, list[Board]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, board_id: str) -> Board | None:
        """A board with its items in the order they were added, or None."""
        with self.ws.connect(read_only=True) as con:
            row = con.execute(_BOARDS_SQL.format(where="b.id = ?", page=""), [board_id]).fetchone()
        if row is None:
            return None
        return Board(id=row[0], user_id=row[1], title=row[2], item_ids=tuple(row[3] or ()))

    def of_user(self, user_id: str, offset: int = 0, limit: int | None = None) -> list[Board]:
        """A user's boards, oldest first, ``limit`` of them from ``offset`` (one query)."""
        page = " LIMIT ? OFFSET ?" if limit is not None else ""
        args: list[object] = [user_id] + ([limit, offset] if limit is not None else [])
        with self.ws.connect(read_only=True) as con:
            rows = con.execute(
                _BOARDS_SQL.format(where="b.user_id = ?", page=page), args
            ).fetchall()
        return [Board(id=r[0], user_id=r[1], title=r[2], item_ids=tuple(r[3] or ())) for r in rows]

    def newest(self, user_id: str, limit: int) -> list[Board]:
        """A user's ``limit`` newest boards, newest first (one query, kept ``ttl_s``)."""
        key, now = (user_id, limit), time.monotonic()
        with self._lock:
            hit = self._newest.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                self._newest.move_to_end(key)
                return hit[1]
        boards = self._read_newest(user_id, limit)
        with self._lock:
            self._newest[key] = (now, boards)
            self._newest.move_to_end(key)
            while len(self._newest) > self.users:
                self._newest.popitem(last=False)
        return boards

    def _forget(self, user_id: str) -> None:
        with self._lock:
            for key in [k for k in self._newest if k[0] == user_id]:
                del self._newest[key]

    def _read_newest(self, user_id: str, limit: int) -> list[Board]:
        where = (
            "b.user_id = ? AND b.id IN (SELECT id FROM boards WHERE user_id = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?)"
        )
        with self.ws.connect(read_only=True) as con:
            rows = con.execute(
                _BOARDS_SQL.format(where=where, page=""), [user_id, user_id, limit]
            ).fetchall()
        boards = [
            Board(id=r[0], user_id=r[1], title=r[2], item_ids=tuple(r[3] or ())) for r in rows
        ]
        return boards[::-1]

    def create(self, user_id: str, title: str | None, max_boards: int | None = None) -> Board:
        """A new empty board with a fresh id.

        Raises
        ------
        InputError
            If the user already owns ``max_boards`` boards.
        """
        board = Board(id=f"b-{uuid.uuid4().hex[:16]}", user_id=user_id, title=title)
        with workspace_write_lock(self.ws):
            if max_boards is not None:
                with self.ws.connect() as con:
                    (n,) = con.execute(
                        "SELECT count(*) FROM boards WHERE user_id = ?", [user_id]
                    ).fetchone()
                if n >= max_boards:
                    raise InputError(
                        f"User {user_id!r} already has {n} boards, the most one user may have "
                        f"(serve.max_boards_per_user = {max_boards}): add items to an existing "
                        "board instead."
                    )
            self.ws.upsert_boards([board])
        self._forget(user_id)
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
        self._forget(board.user_id)
        return board
