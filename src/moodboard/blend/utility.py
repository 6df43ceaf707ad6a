"""The page's objective: ``utility = sum_h w_h * p_h (+ w_ltv * ltv)``, per surface.

The rank stage writes one calibrated probability per head (``p_click``, ``p_save``,
``p_add_to_cart``, ``p_purchase``, ``p_hide``); ``Utility`` weighs them with the surface's own
weights (hide weighs negative: a hidden item costs the page), writes the ``utility`` column and
orders the candidates by it. Any score column can carry a weight (``ltv``, a margin column).
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import Field, field_validator

from moodboard.blend._base import BlendConfig
from moodboard.data import Candidates
from moodboard.data import columns as C
from moodboard.errors import ConfigError

_log = logging.getLogger(__name__)

#: The default weights: a purchase is worth 8 clicks, a hide costs 4.
DEFAULT_WEIGHTS: dict[str, float] = {
    "p_click": 1.0,
    "p_save": 2.0,
    "p_add_to_cart": 4.0,
    "p_purchase": 8.0,
    "p_hide": -4.0,
}


class UtilityConfig(BlendConfig):
    """Weights of the utility, by score column name.

    Attributes
    ----------
    weights
        Score column -> weight; a column with weight 0 is not read. The rank stage names its
        heads ``p_<head>``; ``ltv`` or any other column the candidates carry may be weighed.
    """

    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @field_validator("weights")
    @classmethod
    def _finite(cls, w: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in w.items() if not np.isfinite(v)}
        if bad:
            raise ValueError(f"The 'weights' of UtilityConfig must be finite. Got {bad} instead.")
        if w and not any(w.values()):
            raise ValueError("The 'weights' of UtilityConfig must have a non-zero weight.")
        return w


class Utility:
    """Weighs the rank stage's per-objective scores into one ``utility`` and orders by it.

    Parameters
    ----------
    config
        The weights; ``UtilityConfig()`` when None.
    """

    def __init__(self, config: UtilityConfig | None = None) -> None:
        self.config = config or UtilityConfig()

    def fit(self) -> Utility:
        """Nothing to learn; returns ``self`` (weights are tuned offline, not fitted)."""
        return self

    def __call__(self, cand: Candidates) -> Candidates:
        """``cand`` with a ``utility`` column, ordered by it (descending, stable).

        Rows with a NaN in a weighted column (beyond the ranker's depth) get no utility of
        their own: they follow the scored rows in their incoming order, and their ``utility``
        is below every scored row's.

        Raises
        ------
        ConfigError
            If a weighted column is missing (the message names it and the columns present).
        """
        weights = {k: w for k, w in self.config.weights.items() if w != 0}
        missing = sorted(set(weights) - set(cand.scores))
        if missing and len(cand):
            raise ConfigError(
                f"The utility weighs {missing} but the candidates have no such score column "
                f"(they have {sorted(cand.scores)}): rank with a model that writes them, or "
                "drop those weights."
            )
        if len(cand) == 0:
            return cand.with_score(C.UTILITY, np.empty(0))
        u = np.zeros(len(cand))
        for name, w in weights.items():
            u += w * cand.scores[name].astype(np.float64)
        unscored = ~np.isfinite(u)
        if unscored.any():
            _log.debug("%d candidates without the weighted scores follow", int(unscored.sum()))
            floor = u[~unscored].min() if (~unscored).any() else 0.0
            u[unscored] = floor - 1.0 - np.arange(int(unscored.sum()))
        return cand.with_score(C.UTILITY, u).sort_by(C.UTILITY)
