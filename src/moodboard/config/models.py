"""The components' own configs, composed into settings sections.

Each component's config lives next to its class (``retrieve``, ``understand``); this module
only gathers them: ``[retrieve.*]`` (the indexes the build makes: lexical, dense, visual,
popular), ``[understand]`` (query understanding), and the learned recommenders' sections
under ``[surfaces.feed]``. The names are re-exported so ``from moodboard.config import
TwoTowerConfig`` keeps working.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

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
    "LexicalConfig",
    "PopularConfig",
    "QueryUnderstandingConfig",
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
