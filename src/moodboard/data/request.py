"""A request to a surface and the page it gets back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from moodboard.data.filters import ItemFilter


def new_request_id() -> str:
    """A fresh random request id."""
    return uuid4().hex


class Request(BaseModel):
    """Everything a surface needs to answer one call.

    Exactly one of ``query``, ``item_id``, ``board_id`` or ``image`` is usually set, depending
    on the surface. ``k`` is the page size and ``cursor`` the offset of the page's first item
    (the surface checks ``k``: the routes bound both by ``serve.max_k`` and
    ``serve.max_offset``). ``items`` are seed items given by id (a board's items, or a history
    to use instead of the built one, with its action ``weights``); ``exclude`` items never
    appear; ``session`` is the key that seeds per-request randomness with the user.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    surface: str
    user_id: str | None = None
    query: str | None = None
    item_id: str | None = None
    board_id: str | None = None
    image: bytes | None = None
    crop: tuple[int, ...] | None = None
    items: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    exclude: tuple[str, ...] = ()
    item_filter: ItemFilter | None = None
    session: str | None = None
    k: int = 24
    cursor: int = Field(default=0, ge=0)
    ts: datetime = Field(default_factory=lambda: datetime.now(UTC))
    locale: str | None = None
    arms: dict[str, str] = Field(default_factory=dict)
    request_id: str = Field(default_factory=new_request_id)
    explain: bool = False


class PageItem(BaseModel):
    """One item on a page, with its score and, on request, why it is there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    score: float
    position: int = Field(ge=1)
    propensity: float | None = None
    module: str | None = None
    explanation: dict[str, Any] | None = None


class StageTiming(BaseModel):
    """One stage of a surface's chain as it ran: its kind, its component, its milliseconds.

    ``name`` is one of ``prepare``, ``retrieve`` (one per source asked), ``fuse``, ``rank``,
    ``blend``, ``fallback``; ``component`` is the registry name (``lexical/bm25``,
    ``rank/noop``, ...).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    component: str
    ms: float


class Page(BaseModel):
    """The ordered answer to a request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    surface: str
    items: tuple[PageItem, ...] = ()
    modules: tuple[tuple[str, int, int], ...] = ()
    next_cursor: int | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    stages: tuple[StageTiming, ...] = ()
    arms: dict[str, str] = Field(default_factory=dict)

    @property
    def item_ids(self) -> list[str]:
        """The item ids in page order."""
        return [i.id for i in self.items]
