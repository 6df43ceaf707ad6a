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
from moodboard.rank.inputs import HEADS, MultiHeadInputs
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
from moodboard.rank.rows import (
    candidate_props,
    dense_names,
    retrieval_columns,
    serving_rows,
    to_inputs,
)
from moodboard.rank.search import (
    LAMBDAMART,
    LambdaMARTStage,
    SearchModel,
    lambdamart_stage,
    search_features,
)
from moodboard.rank.signals import OnlineSignals, Signals, SignalsConfig, signals_ibis

__all__ = [
    "FEATURES",
    "HEADS",
    "LAMBDAMART",
    "RANKERS",
    "ChainCandidates",
    "ItemTexts",
    "LambdaMARTConfig",
    "LambdaMARTRanker",
    "LambdaMARTStage",
    "MultiHeadInputs",
    "NoopRanker",
    "OnlineSignals",
    "QueryContext",
    "RankQuery",
    "Ranker",
    "SearchFeatures",
    "SearchModel",
    "SearchRankerFit",
    "ShuffleRanker",
    "Signals",
    "SignalsConfig",
    "TrainingSet",
    "candidate_props",
    "dense_names",
    "lambdamart_stage",
    "make_ranker",
    "query_context",
    "register_ranker",
    "retrieval_columns",
    "search_features",
    "search_training_set",
    "serving_rows",
    "signals_ibis",
    "stems",
    "to_inputs",
    "train_search_ranker",
]
