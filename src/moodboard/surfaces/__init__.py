"""Surfaces: each a declared chain of the stages (understand, retrieve, rank, blend)."""

from moodboard.config import (
    BoardConfig,
    PopularChainConfig,
    RelatedConfig,
    SearchConfig,
    VisualConfig,
)
from moodboard.surfaces.base import SurfaceResult, dedup_images, fill_page
from moodboard.surfaces.board import BoardChain
from moodboard.surfaces.complements import Complement, Complements
from moodboard.surfaces.popular import PopularChain
from moodboard.surfaces.related import RelatedChain
from moodboard.surfaces.search import SearchChain, SearchResult
from moodboard.surfaces.visual import VisualChain

__all__ = [
    "BoardChain",
    "BoardConfig",
    "Complement",
    "Complements",
    "PopularChain",
    "PopularChainConfig",
    "RelatedChain",
    "RelatedConfig",
    "SearchChain",
    "SearchConfig",
    "SearchResult",
    "SurfaceResult",
    "VisualChain",
    "VisualConfig",
    "dedup_images",
    "fill_page",
]
