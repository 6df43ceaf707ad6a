"""Candidate sources under one contract, by name, and their fusion; pure: data in,
``Candidates`` out."""

from moodboard.retrieve.base import (
    CandidateSource,
    SourceConfig,
    SourceQuery,
    TrainingData,
    top_k,
)
from moodboard.retrieve.baselines import EASEConfig
from moodboard.retrieve.dense import DenseConfig, DenseSource, VisualIndexConfig, VisualSource
from moodboard.retrieve.fuse import FuseConfig, Fuser
from moodboard.retrieve.interests import InterestsConfig
from moodboard.retrieve.lexical import BM25Source, LexicalConfig
from moodboard.retrieve.popular import PopularConfig, PopularSource
from moodboard.retrieve.sequence import SequenceConfig
from moodboard.retrieve.text_image import TextImageConfig, TextImageSource
from moodboard.retrieve.two_tower import TwoTowerConfig
from moodboard.retrieve.walks import WalksConfig

__all__ = [
    "BM25Source",
    "CandidateSource",
    "DenseConfig",
    "DenseSource",
    "EASEConfig",
    "FuseConfig",
    "Fuser",
    "InterestsConfig",
    "LexicalConfig",
    "PopularConfig",
    "PopularSource",
    "SequenceConfig",
    "SourceConfig",
    "SourceQuery",
    "TextImageConfig",
    "TextImageSource",
    "TrainingData",
    "TwoTowerConfig",
    "VisualIndexConfig",
    "VisualSource",
    "WalksConfig",
    "top_k",
]
