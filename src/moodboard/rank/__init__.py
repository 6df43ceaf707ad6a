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
from moodboard.rank.registry import (
    RANKERS,
    NoopRanker,
    Ranker,
    RankQuery,
    ShuffleRanker,
    make_ranker,
    register_ranker,
)
from moodboard.rank.search import (
    LAMBDAMART,
    LambdaMARTStage,
    SearchModel,
    lambdamart_stage,
    search_features,
)

__all__ = [
    "FEATURES",
    "LAMBDAMART",
    "RANKERS",
    "ChainCandidates",
    "ItemTexts",
    "LambdaMARTConfig",
    "LambdaMARTRanker",
    "LambdaMARTStage",
    "NoopRanker",
    "QueryContext",
    "RankQuery",
    "Ranker",
    "SearchFeatures",
    "SearchModel",
    "SearchRankerFit",
    "ShuffleRanker",
    "TrainingSet",
    "lambdamart_stage",
    "make_ranker",
    "query_context",
    "register_ranker",
    "search_features",
    "search_training_set",
    "stems",
    "train_search_ranker",
]
