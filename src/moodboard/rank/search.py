"""``rank/lambdamart``: the search chain's rank stage, a LambdaMART model over ``SearchFeatures``.

The stage re-ranks the first ``depth`` candidates of the fused list (the ones the model was
trained on, ``rank.engagement``) and keeps the rest after them in their order. The features of
a request come from the prepare step's own understanding of the query (``context["parsed"]``
and ``context["vector"]`` of ``prepare/search``), so training and serving compute them with
the same code on the same inputs.

The model is a resource of the engine (``resources["rank/lambdamart"]``, a ``SearchModel``):
the server loads the one the build trained, an evaluation passes its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from moodboard.data import Candidates, Catalog
from moodboard.errors import ConfigError
from moodboard.rank.features import ItemTexts, SearchFeatures, query_context
from moodboard.rank.ltr import LambdaMARTRanker
from moodboard.rank.registry import RankQuery, register_ranker
from moodboard.retrieve import CandidateSource

#: The rank stage's registry name, and the key of its model among the engine's resources.
LAMBDAMART = "rank/lambdamart"
#: The score column the stage adds (the page's score: ``surfaces.page.SCORE_ORDER``).
LTR = "ltr"


@dataclass(frozen=True)
class SearchModel:
    """A trained search ranker with the features it was trained on.

    Attributes
    ----------
    ranker
        The LambdaMART model.
    features
        The catalog's ``SearchFeatures`` (same item texts, vectors and popularity as training).
    depth
        How many of the fused candidates it re-ranks (the training groups' size).
    """

    ranker: LambdaMARTRanker
    features: SearchFeatures
    depth: int = 100


class LambdaMARTStage:
    """The rank stage ``rank/lambdamart``.

    Parameters
    ----------
    model
        The trained model, its features and depth.
    """

    name = LAMBDAMART

    def __init__(self, model: SearchModel) -> None:
        self.model = model

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        """The first ``depth`` candidates by the model's score, then the rest in their order.

        Raises
        ------
        ConfigError
            If the prepare step put no parsed query in ``query.context`` (not a search chain).
        """
        if len(cand) == 0:
            return cand
        parsed = query.context.get("parsed")
        if parsed is None:
            raise ConfigError(
                f"{LAMBDAMART} ranks search results: its chain's prepare step must put the "
                "parsed query in the context (use prepare/search)."
            )
        m = self.model
        n = min(m.depth, len(cand))
        head = cand.head(n)
        scores = m.ranker.predict(
            m.features(query_context(parsed, query.context.get("vector")), head)
        )
        rest = scores.min() - 1.0 - np.arange(len(cand) - n, dtype=np.float64)
        return cand.with_score(LTR, np.concatenate([scores, rest])).sort_by(LTR)


def search_features(
    catalog: Catalog,
    sources: Mapping[str, CandidateSource],
    texts: ItemTexts,
    popularity: np.ndarray | None = None,
) -> SearchFeatures:
    """The serving ``SearchFeatures`` of a version: its catalog's texts, the ``dense/text``
    vectors and the ``popular/trending`` scores (or ``popularity`` when given).

    Parameters
    ----------
    catalog
        The version's catalog.
    sources
        The version's loaded sources.
    texts
        ``ItemTexts`` of the catalog.
    popularity
        Per-item popularity to use instead of the popular source's (e.g. as of a cutoff).
    """
    dense = sources.get("dense/text")
    pop = sources.get("popular/trending")
    if popularity is None and pop is not None:
        popularity = np.asarray(pop.scores)  # type: ignore[attr-defined]
    vectors = None if dense is None else dense.item_vectors()
    return SearchFeatures(catalog, texts, vectors, popularity=popularity)


def lambdamart_stage(seed: int = 0, resources: Mapping[str, Any] | None = None) -> LambdaMARTStage:
    """The ``rank/lambdamart`` stage of the model in ``resources["rank/lambdamart"]``.

    Raises
    ------
    ConfigError
        If there is no model among the resources (the version trained none).
    """
    model = (resources or {}).get(LAMBDAMART)
    if not isinstance(model, SearchModel):
        raise ConfigError(
            f"{LAMBDAMART} needs a trained model and this engine has none: `moodboard build` "
            "trains it when the logs hold enough labelled search queries "
            "(rank.lambdamart.min_queries), or declare ranker = 'rank/noop'."
        )
    return LambdaMARTStage(model)


register_ranker(LAMBDAMART, lambdamart_stage)
