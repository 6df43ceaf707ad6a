"""Ranking: request-time features and learned rankers; pure: data in, ``Candidates`` out."""

from moodboard.rank.features import FEATURES, ItemTexts, QueryContext, SearchFeatures, stems
from moodboard.rank.ltr import LambdaMARTConfig, LambdaMARTRanker
from moodboard.rank.registry import (
    RANKERS,
    NoopRanker,
    Ranker,
    RankQuery,
    ShuffleRanker,
    make_ranker,
    register_ranker,
)

__all__ = [
    "FEATURES",
    "RANKERS",
    "ItemTexts",
    "LambdaMARTConfig",
    "LambdaMARTRanker",
    "NoopRanker",
    "QueryContext",
    "RankQuery",
    "Ranker",
    "SearchFeatures",
    "ShuffleRanker",
    "make_ranker",
    "register_ranker",
    "stems",
]
