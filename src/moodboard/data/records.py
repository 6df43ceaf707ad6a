"""Records of the catalog and the event log: Product, Board, Event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    """The kinds of event moodboard understands."""

    IMPRESSION = "impression"
    CLICK = "click"
    SAVE = "save"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    HIDE = "hide"
    SEARCH = "search"

    @property
    def needs_item(self) -> bool:
        """Whether an event of this type must name an item."""
        return self is not EventType.SEARCH


#: Event types that are actions on an item shown on a page (all but impressions and searches).
ACTIONS: tuple[EventType, ...] = (
    EventType.CLICK,
    EventType.SAVE,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
    EventType.HIDE,
)

#: The weight of each interaction in a user's history (hides and impressions are none).
INTERACTION_WEIGHTS: dict[str, float] = {
    EventType.CLICK.value: 1.0,
    EventType.SAVE.value: 3.0,
    EventType.ADD_TO_CART.value: 4.0,
    EventType.PURCHASE.value: 8.0,
}


class Product(BaseModel):
    """One catalog item.

    Parameters
    ----------
    id, title
        Required external id and display title.
    category
        A path such as ``"Apparel/Topwear/Shirts"``.
    image
        A local path (resolved at ingestion) or a URL.
    attributes
        Every further column of the catalog file, as strings.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    description: str | None = None
    brand: str | None = None
    category: str | None = None
    price: float | None = Field(default=None, ge=0)
    currency: str | None = None
    image: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], attributes: Mapping[str, str]) -> Product:
        """A product from a row with the canonical catalog columns (missing ones are None)."""
        price = row.get("price")
        return cls(
            id=row["id"],
            title=row["title"],
            description=row.get("description"),
            brand=row.get("brand"),
            category=row.get("category"),
            price=float(price) if price is not None else None,
            currency=row.get("currency"),
            image=row.get("image"),
            attributes=dict(attributes),
            created_at=row.get("created_at"),
        )

    @property
    def category_path(self) -> tuple[str, ...]:
        """The category split on ``/`` (empty when the product has none)."""
        return tuple(p for p in (self.category or "").split("/") if p)


class Board(BaseModel):
    """A user's collection of saved items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    user_id: str = Field(min_length=1)
    title: str | None = None
    item_ids: tuple[str, ...] = ()


class Event(BaseModel):
    """One logged event: an impression, an action on an item, or a search."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1)
    ts: datetime
    user_id: str = Field(min_length=1)
    type: EventType
    item_id: str | None = None
    query: str | None = None
    surface: str | None = None
    position: int | None = Field(default=None, ge=1)
    request_id: str | None = None
    board_id: str | None = None
    arms: dict[str, str] = Field(default_factory=dict)
    propensity: float | None = Field(default=None, ge=0, le=1)

    def as_row(self) -> dict[str, Any]:
        """The event as a flat row in the event-file layout."""
        row = self.model_dump()
        row["type"] = self.type.value
        return row
