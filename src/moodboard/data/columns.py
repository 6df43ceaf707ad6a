"""Column names shared by every stage. Use these constants, never string literals."""

from __future__ import annotations

from typing import Final

# catalog
ID: Final = "id"
TITLE: Final = "title"
DESCRIPTION: Final = "description"
BRAND: Final = "brand"
CATEGORY: Final = "category"
PRICE: Final = "price"
CURRENCY: Final = "currency"
IMAGE: Final = "image"
ATTRIBUTES: Final = "attributes"
CREATED_AT: Final = "created_at"

CATALOG_COLUMNS: Final = (
    ID,
    TITLE,
    DESCRIPTION,
    BRAND,
    CATEGORY,
    PRICE,
    CURRENCY,
    IMAGE,
    CREATED_AT,
)
CATALOG_REQUIRED: Final = (ID, TITLE)

# events
EVENT_ID: Final = "event_id"
TS: Final = "ts"
USER_ID: Final = "user_id"
TYPE: Final = "type"
ITEM_ID: Final = "item_id"
QUERY: Final = "query"
SURFACE: Final = "surface"
POSITION: Final = "position"
REQUEST_ID: Final = "request_id"
BOARD_ID: Final = "board_id"
ARMS: Final = "arms"
PROPENSITY: Final = "propensity"
PROPS: Final = "props"
DAY: Final = "day"

EVENT_COLUMNS: Final = (
    EVENT_ID,
    TS,
    USER_ID,
    TYPE,
    ITEM_ID,
    QUERY,
    SURFACE,
    POSITION,
    REQUEST_ID,
    BOARD_ID,
    ARMS,
    PROPENSITY,
)
EVENT_REQUIRED: Final = (EVENT_ID, TS, USER_ID, TYPE)

# candidates
ITEM: Final = "item"
SOURCE: Final = "source"
RETRIEVAL: Final = "retrieval"
UTILITY: Final = "utility"
