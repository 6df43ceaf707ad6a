"""Surfaces: each a declared chain of the stages (understand, retrieve, rank, blend)."""

from moodboard.surfaces.search import SearchChain, SearchConfig, SearchResult

__all__ = ["SearchChain", "SearchConfig", "SearchResult"]
