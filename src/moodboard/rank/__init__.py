"""Ranking: request-time features and learned rankers; pure: data in, ``Candidates`` out."""

from moodboard.rank.calibration import Calibrator, fit_calibrator
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
from moodboard.rank.inputs import ACTION_CODES, HEADS, MultiHeadInputs
from moodboard.rank.ltr import LambdaMARTConfig, LambdaMARTRanker
from moodboard.rank.ltv import LTV, LTV_COLUMN, LtvConfig, LtvModel, LtvScorer
from moodboard.rank.multihead import MultiHeadConfig, MultiHeadRanker
from moodboard.rank.multihead_stage import (
    MULTIHEAD,
    MultiHeadModel,
    MultiHeadStage,
    multihead_stage,
)
from moodboard.rank.personal import (
    PERSONAL_FEATURES,
    PersonalConfig,
    PersonalFeatures,
    PersonalStage,
)
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
    "ACTION_CODES",
    "FEATURES",
    "HEADS",
    "LAMBDAMART",
    "LTV",
    "LTV_COLUMN",
    "MULTIHEAD",
    "PERSONAL_FEATURES",
    "RANKERS",
    "Calibrator",
    "ChainCandidates",
    "ItemTexts",
    "LambdaMARTConfig",
    "LambdaMARTRanker",
    "LambdaMARTStage",
    "LtvConfig",
    "LtvModel",
    "LtvScorer",
    "MultiHeadConfig",
    "MultiHeadInputs",
    "MultiHeadModel",
    "MultiHeadRanker",
    "MultiHeadStage",
    "NoopRanker",
    "OnlineSignals",
    "PersonalConfig",
    "PersonalFeatures",
    "PersonalStage",
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
    "fit_calibrator",
    "lambdamart_stage",
    "make_ranker",
    "multihead_stage",
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
