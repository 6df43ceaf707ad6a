"""``popular/trending``: items by time-decayed engagement, the fallback of every surface.

The scores are ``TrainingData.item_features["popularity"]`` when given (the build computes
them from the event log with ``half_life_days`` and ``weights``), else the weighted count of
each item in ``TrainingData.sequences``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from moodboard.data import Candidates
from moodboard.errors import ConfigError
from moodboard.retrieve.base import (
    CandidateSource,
    SourceConfig,
    SourceQuery,
    TrainingData,
    top_k,
)

#: Default weight of each event type in popularity.
ACTION_WEIGHTS = {
    "impression": 0.0,
    "click": 1.0,
    "save": 3.0,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "hide": -1.0,
}


class PopularConfig(SourceConfig):
    """Popularity parameters (``[retrieve.popular]``): the half-life of an event's weight and
    the weight of each event type."""

    half_life_days: float = Field(default=7.0, gt=0)
    weights: dict[str, float] = Field(default_factory=lambda: dict(ACTION_WEIGHTS))


class PopularSource(CandidateSource):
    """Ranks items by a precomputed popularity score; ties broken by index."""

    kind = "popular/trending"
    Config = PopularConfig
    config: PopularConfig

    def _fit(self, data: TrainingData) -> None:
        given = data.item_features.get("popularity")
        if given is not None:
            s = np.asarray(given, dtype=np.float64)
        else:
            s = np.zeros(data.n_items)
            for j, seq in enumerate(data.sequences):
                w = 1.0 if data.weights is None else np.asarray(data.weights[j], np.float64)
                np.add.at(s, np.asarray(seq, dtype=np.int64), w)
        if len(s) != data.n_items:
            raise ConfigError(
                f"{self.name} needs one score per item. Got {len(s)} for "
                f"{data.n_items} items instead."
            )
        self.scores = s

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        # tiny index-based tie-break keeps the order stable and deterministic
        s = self.scores - np.arange(len(self.scores)) * 1e-12
        idx = top_k(s, k, allowed)
        return Candidates.from_scores(idx, self.scores[idx], self.name)

    def _save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "scores.npy", self.scores)
        return {"items_with_engagement": int((self.scores > 0).sum())}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self.scores = np.load(folder / "scores.npy", allow_pickle=False)
