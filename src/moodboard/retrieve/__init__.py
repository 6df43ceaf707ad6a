"""Candidate sources by name and their fusion; pure: data in, ``Candidates`` out."""

from moodboard.retrieve.base import Source, SourceConfig, SourceQuery, top_k
from moodboard.retrieve.dense import DenseConfig, DenseSource
from moodboard.retrieve.fuse import FuseConfig, Fuser
from moodboard.retrieve.lexical import BM25Source, LexicalConfig
from moodboard.retrieve.popular import PopularConfig, PopularSource

__all__ = [
    "BM25Source",
    "DenseConfig",
    "DenseSource",
    "FuseConfig",
    "Fuser",
    "LexicalConfig",
    "PopularConfig",
    "PopularSource",
    "Source",
    "SourceConfig",
    "SourceQuery",
    "top_k",
]
