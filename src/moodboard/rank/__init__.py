"""Ranking: request-time features and learned rankers; pure: data in, ``Candidates`` out."""

from moodboard.rank.features import FEATURES, ItemTexts, QueryContext, SearchFeatures, stems
from moodboard.rank.ltr import LambdaMARTConfig, LambdaMARTRanker

__all__ = [
    "FEATURES",
    "ItemTexts",
    "LambdaMARTConfig",
    "LambdaMARTRanker",
    "QueryContext",
    "SearchFeatures",
    "stems",
]
