"""``rank/multihead``: the rank stage of the multi-head ranker.

The stage stays pure: it does not read logs or the clock. The engine gives it, among its
resources, a ``MultiHeadModel``: the trained ranker and an ``inputs`` callable that turns the
request (``RankQuery``, whose context the prepare step filled with the user's recent actions)
and the candidates into ``MultiHeadInputs``. The stage adds one ``p_<head>`` column per action
(calibrated probabilities) and the ``utility`` column, and orders the candidates by utility.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from moodboard.data import Candidates
from moodboard.errors import ConfigError
from moodboard.rank.inputs import HEADS, MultiHeadInputs
from moodboard.rank.ltv import LTV_COLUMN
from moodboard.rank.multihead import MultiHeadRanker
from moodboard.rank.registry import RankQuery, register_ranker

_log = logging.getLogger(__name__)

#: The rank stage's registry name, and the key of its model among the engine's resources.
MULTIHEAD = "rank/multihead"
#: The score column the stage orders by.
UTILITY = "utility"

#: ``(query, candidates) -> MultiHeadInputs`` of those candidates, in their order.
InputsFn = Callable[[RankQuery, Candidates], MultiHeadInputs]


@dataclass(frozen=True)
class MultiHeadModel:
    """The resource ``rank/multihead`` serves.

    Attributes
    ----------
    ranker
        The trained, calibrated ranker.
    inputs
        Builds the ranker's inputs of a request's candidates (the user's recent actions from
        the prepared context, dense features of each candidate).
    weights
        Utility weights per head (None: the ranker's config).
    depth
        The stage scores the first ``depth`` candidates of the fused list; the rest follow
        them in their order.
    ltv
        The value model of the same inputs (``rank.ltv.LtvScorer``), or None: with one, the
        stage also writes the ``ltv`` column (the candidates' predicted long-term value).
    """

    ranker: MultiHeadRanker
    inputs: InputsFn
    weights: Mapping[str, float] | None = None
    depth: int = 300
    ltv: Callable[[MultiHeadInputs], np.ndarray] | None = None


class MultiHeadStage:
    """The rank stage ``rank/multihead``.

    Parameters
    ----------
    model
        The ranker, its inputs callable and utility weights.
    """

    name = MULTIHEAD

    def __init__(self, model: MultiHeadModel) -> None:
        self.model = model

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        """The first ``depth`` candidates with ``p_<head>`` and ``utility`` columns (and ``ltv``
        with a value model), by utility descending, then the rest in their order (utility below
        the scored ones, heads and ``ltv`` NaN).

        Raises
        ------
        ConfigError
            If the inputs callable returns a different number of rows than candidates.
        """
        if len(cand) == 0:
            return cand
        n = min(self.model.depth, len(cand))
        head = cand.head(n)
        x = self.model.inputs(query, head)
        if len(x) != n:
            raise ConfigError(
                f"The inputs of {MULTIHEAD} must have one row per candidate ({n}). "
                f"Got {len(x)} instead: fix the MultiHeadModel.inputs callable."
            )
        probs = self.model.ranker.predict_proba(x)
        utility = self.model.ranker.utility(probs, self.model.weights)
        rest = len(cand) - n
        pad = np.full(rest, np.nan)
        scores = {
            **cand.scores,
            **{f"p_{h}": np.concatenate([probs[:, j], pad]) for j, h in enumerate(HEADS)},
            UTILITY: np.concatenate([utility, utility.min() - 1.0 - np.arange(rest)]),
        }
        if self.model.ltv is not None:
            scores[LTV_COLUMN] = np.concatenate([self.model.ltv(x), pad])
        return Candidates(cand.items, scores, cand.sources).sort_by(UTILITY)


def multihead_stage(seed: int = 0, resources: Mapping[str, Any] | None = None) -> MultiHeadStage:
    """The ``rank/multihead`` stage of the model in ``resources["rank/multihead"]``.

    Raises
    ------
    ConfigError
        If there is no ``MultiHeadModel`` among the resources (the version trained none).
    """
    model = (resources or {}).get(MULTIHEAD)
    if not isinstance(model, MultiHeadModel):
        raise ConfigError(
            f"{MULTIHEAD} needs a trained multi-head model and this engine has none: "
            "`moodboard build` trains it from a workspace's labelled impressions, or "
            "declare ranker = 'rank/noop'."
        )
    return MultiHeadStage(model)


register_ranker(MULTIHEAD, multihead_stage)
