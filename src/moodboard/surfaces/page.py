"""A surface's result as a ``Page``: the page's score of each item, and the page cut out of the
surface's order (the in-process twin of the server's page JSON, ``serve.pages``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from moodboard.data import Candidates, Catalog, Page, PageItem, Request
from moodboard.data import columns as C

if TYPE_CHECKING:
    from moodboard.surfaces.runner import SurfaceResult

#: Score columns, most final first: a page item's ``score`` is the first one present.
SCORE_ORDER = ("utility", "ltr", C.RETRIEVAL)


def page_score(cand: Candidates) -> np.ndarray:
    """The page's score of each candidate: the first of ``SCORE_ORDER`` it has."""
    for name in SCORE_ORDER:
        if name in cand.scores:
            return cand.scores[name]
    return np.zeros(len(cand), dtype=np.float32)


def _chance(p: float) -> float:
    """A logged propensity: 1 where nothing was drawn (NaN: e.g. a fallback item)."""
    return 1.0 if np.isnan(p) else float(p)


def to_page(res: SurfaceResult, request: Request, catalog: Catalog, surface: str) -> Page:
    """The ``Page`` of items ``cursor .. cursor + k`` of a surface's result."""
    start, k = request.cursor, request.k
    cand = res.candidates.take(np.arange(start, min(start + k, len(res.candidates))))
    scores = page_score(cand)
    ids = catalog.ids.external(cand.items.tolist()) if len(cand) else []
    chance = cand.scores.get(C.PROPENSITY)  # a page a policy drew (modules, blend/compose)
    items = []
    for j, item_id in enumerate(ids):
        explanation = None
        if request.explain:
            explanation = {
                "sources": [s for s in str(cand.sources[j] or "").split("+") if s],
                "scores": {n: float(v[j]) for n, v in cand.scores.items()},
            }
        score = float(scores[j])
        items.append(
            PageItem(
                id=item_id,
                score=0.0 if np.isnan(score) else score,
                position=start + j + 1,
                propensity=None if chance is None else _chance(chance[j]),
                explanation=explanation,
            )
        )
    more = len(res.candidates) > start + k
    return Page(
        request_id=request.request_id,
        surface=surface,
        items=tuple(items),
        next_cursor=start + k if more else None,
        timings_ms=res.timings_ms,
        stages=res.stages,
        arms=request.arms,
    )
