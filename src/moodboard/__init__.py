"""moodboard: a discovery engine for shopping catalogs."""

from moodboard.config import Settings, load_settings
from moodboard.data import (
    Board,
    Candidates,
    Catalog,
    Event,
    EventType,
    IdMap,
    Page,
    Product,
    Request,
)
from moodboard.errors import MoodboardError

__version__ = "0.1.0"

__all__ = [
    "Board",
    "Candidates",
    "Catalog",
    "Event",
    "EventType",
    "IdMap",
    "MoodboardError",
    "Page",
    "Product",
    "Request",
    "Settings",
    "__version__",
    "load_settings",
]
