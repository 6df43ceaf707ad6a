"""The components' own configs, composed into settings sections.

Each component's config lives next to its class (``retrieve``, ``understand``); this module
only gathers them: ``[retrieve.*]`` (the indexes the build makes: lexical, dense, visual,
popular), ``[understand]`` (query understanding), and the learned recommenders' sections
under ``[surfaces.feed]``. The names are re-exported so ``from moodboard.config import
TwoTowerConfig`` keeps working.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from moodboard.rank import LambdaMARTConfig, LtvConfig, MultiHeadConfig, SignalsConfig
from moodboard.retrieve import (
    DenseConfig,
    EASEConfig,
    FuseConfig,
    InterestsConfig,
    LexicalConfig,
    PopularConfig,
    SequenceConfig,
    SourceConfig,
    TextImageConfig,
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
    "BotsConfig",
    "DenseConfig",
    "EASEConfig",
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
    "TextImageConfig",
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
    text_image: TextImageConfig = TextImageConfig()
    popular: PopularConfig = PopularConfig()


class LabelsConfig(_Frozen):
    """How impressions are labelled by the actions on them (``pipelines.labels``).

    Attributes
    ----------
    window_minutes
        Actions count when logged at most this long after the impression (and not before it).
    """

    window_minutes: float = Field(default=30.0, gt=0, le=7 * 24 * 60)


class BotsConfig(_Frozen):
    """``[bots]``: the named rules that flag an account as a bot (``pipelines.bots``).

    Each rule reads one statistic of the account's deduplicated events; an account is flagged
    by the first rule, in this order, whose statistic crosses its threshold. Flagged accounts'
    events are left out of what training and serving read (popularity, labels, histories).

    Attributes
    ----------
    enabled
        Flag accounts at all (False: nobody is flagged, every event counts).
    max_per_minute
        ``per_minute``: more actions (click, save, add_to_cart, purchase) than this within
        any 60 seconds.
    max_per_day
        ``per_day``: more actions than this on one UTC day.
    max_same_query_per_day
        ``repeated_query``: one query text searched more times than this on one UTC day.
    max_gap_cv
        ``regular_gaps``: the times between consecutive events of one type (searches, clicks,
        saves, ...) vary less than this (coefficient of variation: standard deviation /
        mean, gaps in whole seconds capped at a day), over at least ``min_gaps`` gaps.
    min_gaps
        The fewest gaps of one type ``regular_gaps`` judges.
    max_gap_minutes
        Gaps this long or longer are breaks between sessions: ``regular_gaps`` does not judge
        them.
    min_item_entropy
        ``item_entropy``: the actions are spread over the items with less entropy than this
        (bits: log2 of the number of items when spread evenly), over at least
        ``min_entropy_actions`` actions.
    min_entropy_actions
        The fewest actions ``item_entropy`` judges.
    """

    enabled: bool = True
    max_per_minute: int = Field(default=30, ge=1)
    max_per_day: int = Field(default=1_000, ge=1)
    max_same_query_per_day: int = Field(default=12, ge=1)
    max_gap_cv: float = Field(default=0.05, ge=0)
    min_gaps: int = Field(default=10, ge=2)
    max_gap_minutes: float = Field(default=30.0, gt=0)
    min_item_entropy: float = Field(default=2.0, ge=0)
    min_entropy_actions: int = Field(default=30, ge=1)


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
    signals
        The point-in-time features of the multi-head ranker's rows (``rank.signals``).
    ltv
        The value model (``rank/ltv``): a user's engagement over the days after a page.
    """

    lambdamart: LambdaMARTConfig = LambdaMARTConfig()
    multihead: MultiHeadConfig = MultiHeadConfig()
    labels: LabelsConfig = LabelsConfig()
    signals: SignalsConfig = SignalsConfig()
    ltv: LtvConfig = LtvConfig()
    heldout_fraction: float = Field(default=0.5, gt=0, lt=1)
