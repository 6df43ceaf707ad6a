"""Pure data types shared by every stage; no I/O and no imports of other moodboard packages."""

from moodboard.data import columns
from moodboard.data.candidates import Candidates
from moodboard.data.idmap import IdMap
from moodboard.data.records import ACTIONS, Board, Event, EventType, Product
from moodboard.data.request import Page, PageItem, Request, new_request_id

__all__ = [
    "ACTIONS",
    "Board",
    "Candidates",
    "Event",
    "EventType",
    "IdMap",
    "Page",
    "PageItem",
    "Product",
    "Request",
    "columns",
    "new_request_id",
]
