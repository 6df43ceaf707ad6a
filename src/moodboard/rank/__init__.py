"""Ranking: request-time features and learned rankers; pure: data in, ``Candidates`` out."""

from moodboard.rank.engagement import (
    ChainCandidates,
    SearchRankerFit,
    TrainingSet,
    search_training_set,
    train_search_ranker,
)
from moodboard.rank.features import (
    FEATURES,
    ItemTexts,
    QueryContext,
    SearchFeatures,
    query_context,
    stems,
)
from moodboard.rank.ltr import LambdaMARTConfig, LambdaMARTRanker

__all__ = [
    "FEATURES",
    "ChainCandidates",
    "ItemTexts",
    "LambdaMARTConfig",
    "LambdaMARTRanker",
    "QueryContext",
    "SearchFeatures",
    "SearchRankerFit",
    "TrainingSet",
    "query_context",
    "search_training_set",
    "stems",
    "train_search_ranker",
]
