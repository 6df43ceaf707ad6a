"""Pure data types shared by every stage; no I/O and no imports of other moodboard packages."""

from moodboard.data import columns
from moodboard.data.candidates import Candidates
from moodboard.data.catalog import Catalog
from moodboard.data.filters import ItemFilter
from moodboard.data.idmap import IdMap
from moodboard.data.records import ACTIONS, Board, Event, EventType, Product
from moodboard.data.request import Page, PageItem, Request, StageTiming, new_request_id

__all__ = [
    "ACTIONS",
    "Board",
    "Candidates",
    "Catalog",
    "Event",
    "EventType",
    "IdMap",
    "ItemFilter",
    "Page",
    "PageItem",
    "Product",
    "Request",
    "StageTiming",
    "columns",
    "new_request_id",
]
