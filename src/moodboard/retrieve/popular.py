"""``popular/trending``: items by time-decayed engagement, the fallback of every surface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from moodboard.data import Candidates, Catalog
from moodboard.errors import ConfigError
from moodboard.retrieve.base import Source, SourceConfig, SourceQuery, top_k

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
    """Popularity parameters."""

    half_life_days: float = Field(default=7.0, gt=0)
    weights: dict[str, float] = Field(default_factory=lambda: dict(ACTION_WEIGHTS))


class PopularSource(Source):
    """Ranks items by a precomputed popularity score; ties broken by index."""

    kind = "popular/trending"
    Config = PopularConfig
    config: PopularConfig

    def _fit(self, catalog: Catalog, scores: np.ndarray | None = None, **_: Any) -> None:
        s = np.zeros(len(catalog)) if scores is None else np.asarray(scores, dtype=np.float64)
        if len(s) != len(catalog):
            raise ConfigError(
                f"{self.name} needs one score per item. Got {len(s)} for "
                f"{len(catalog)} items instead."
            )
        self.scores = s

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        # tiny index-based tie-break keeps the order stable and deterministic
        s = self.scores - np.arange(len(self.scores)) * 1e-12
        idx = top_k(s, k, allowed)
        return Candidates.from_scores(idx, self.scores[idx], self.name)

    def save(self, folder: Path) -> None:
        """Write the scores (.npy) and the config."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "scores.npy", self.scores)
        (folder / "source.json").write_text(json.dumps(self.config.model_dump()))

    @classmethod
    def load(cls, folder: Path, catalog: Catalog, name: str | None = None) -> PopularSource:
        """Open saved scores."""
        folder = Path(folder)
        cfg = PopularConfig.model_validate_json((folder / "source.json").read_text())
        return cls(cfg, name).fit(catalog, scores=np.load(folder / "scores.npy"))
