"""The components' own configs, composed into settings sections.

Each component's config lives next to its class (``retrieve``, ``understand``); this module
only gathers them: ``[retrieve.*]`` (the indexes the build makes: lexical, dense, visual,
popular), ``[understand]`` (query understanding), and the learned recommenders' sections
under ``[surfaces.feed]``. The names are re-exported so ``from moodboard.config import
TwoTowerConfig`` keeps working.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from moodboard.rank import LambdaMARTConfig, MultiHeadConfig
from moodboard.retrieve import (
    DenseConfig,
    FuseConfig,
    InterestsConfig,
    LexicalConfig,
    PopularConfig,
    SequenceConfig,
    SourceConfig,
    TwoTowerConfig,
    VisualIndexConfig,
    WalksConfig,
)
from moodboard.understand.query import QueryUnderstandingConfig

#: A settings section's base: the components' own config base (frozen, unknown keys refused).
_Frozen = SourceConfig
#: How a surface fuses its sources: the retrieve stage's ``FuseConfig`` itself.
FuseSettings = FuseConfig

__all__ = [
    "DenseConfig",
    "FuseSettings",
    "InterestsConfig",
    "LabelsConfig",
    "LambdaMARTConfig",
    "LexicalConfig",
    "MultiHeadConfig",
    "PopularConfig",
    "QueryUnderstandingConfig",
    "RankSettings",
    "RetrieveSettings",
    "SequenceConfig",
    "TwoTowerConfig",
    "VisualIndexConfig",
    "WalksConfig",
]


class RetrieveSettings(BaseModel):
    """The configs of the candidate sources ``moodboard build`` indexes (``[retrieve.*]``)."""

    model_config = ConfigDict(extra="forbid")

    lexical: LexicalConfig = LexicalConfig()
    dense: DenseConfig = DenseConfig()
    visual: VisualIndexConfig = VisualIndexConfig()
    popular: PopularConfig = PopularConfig()


class LabelsConfig(_Frozen):
    """How impressions are labelled by the actions on them (``pipelines.labels``).

    Attributes
    ----------
    window_minutes
        Actions count when logged at most this long after the impression (and not before it).
    """

    window_minutes: float = Field(default=30.0, gt=0, le=7 * 24 * 60)


class RankSettings(_Frozen):
    """``[rank]``: the learned rankers the build trains from engagement.

    Attributes
    ----------
    lambdamart
        The search ranker (``rank/lambdamart``): LightGBM parameters, ``min_queries``, ``depth``.
    multihead
        The multi-head engagement ranker (``rank/multihead``): network, training,
        calibration and utility weights.
    labels
        The label window of the impressions it learns from.
    heldout_fraction
        The latest share of the search requests the build holds out to measure the served
        ranked chain against the unranked one (reported in the manifest).
    """

    lambdamart: LambdaMARTConfig = LambdaMARTConfig()
    multihead: MultiHeadConfig = MultiHeadConfig()
    labels: LabelsConfig = LabelsConfig()
    heldout_fraction: float = Field(default=0.5, gt=0, lt=1)
