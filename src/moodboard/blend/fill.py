"""Page fill: top a page up to ``k`` from fallback sources, then from the catalog itself.

``fill_page`` asks the fallback sources (popular items by default) and, as a last resort, the
catalog in index order, always within the request's filter and exclusions. So a page is short
only when the filter and exclusions leave fewer than ``k`` items, and empty only when they
leave none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.data import columns as C
from moodboard.retrieve import CandidateSource, SourceQuery

_log = logging.getLogger(__name__)

#: The provenance of items the last-resort fallback took from the catalog itself.
CATALOG_FALLBACK = "fallback/catalog"


def concat(a: Candidates, b: Candidates) -> Candidates:
    """``a`` then ``b``; score columns missing on one side are NaN there."""
    if len(a) == 0:
        return b
    if len(b) == 0:
        return a
    names = set(a.scores) | set(b.scores)
    scores = {
        n: np.concatenate(
            [a.scores.get(n, np.full(len(a), np.nan)), b.scores.get(n, np.full(len(b), np.nan))]
        )
        for n in names
    }
    return Candidates(
        np.concatenate([a.items, b.items]), scores, np.concatenate([a.sources, b.sources])
    )


def _as_fallback(more: Candidates, name: str) -> Candidates:
    """Fallback items score 0 on ``retrieval``; their own score stays as the ``name`` column."""
    scores = {C.RETRIEVAL: np.zeros(len(more))}
    if C.RETRIEVAL in more.scores:
        scores[name] = more.score(C.RETRIEVAL)
    return Candidates(more.items, scores, more.sources)


def fill_page(
    candidates: Candidates,
    k: int,
    catalog: Catalog,
    sources: Mapping[str, CandidateSource],
    fallback: Sequence[str],
    item_filter: ItemFilter | None = None,
    exclude: np.ndarray | None = None,
) -> Candidates:
    """``candidates`` topped up to ``k`` items from the fallback sources, then the catalog.

    Fallback sources are asked in order for the items still missing, within ``item_filter``
    and never returning ``exclude`` or an item already on the page; what they cannot supply
    comes from the catalog in index order under the same constraints. ``candidates`` is
    returned as it is when it already has ``k`` items (it is never cut).

    Parameters
    ----------
    candidates
        The surface's own candidates, best first.
    k
        The page size to reach.
    catalog
        The items, for the last resort.
    sources
        Fitted sources by name; fallback names missing here are skipped.
    fallback
        Source names to ask, in order (e.g. ``("popular/trending",)``).
    item_filter, exclude
        The request's hard constraints.

    Returns
    -------
    Candidates
        ``candidates`` followed by fallback items (``retrieval`` 0, their source's own score
        in a column named after it); short of ``k`` only when the constraints allow fewer.
    """
    if len(candidates) >= k:
        return candidates
    skip = np.asarray([] if exclude is None else exclude, dtype=np.int64)
    for name in fallback:
        source = sources.get(name)
        if source is None:
            _log.debug("fallback source %s is not loaded; skipped", name)
            continue
        taken = np.concatenate([skip, candidates.items.astype(np.int64)])
        query = SourceQuery(item_filter=item_filter, exclude=taken)
        more = source(query, k - len(candidates)).exclude(candidates.items)
        candidates = concat(candidates, _as_fallback(more, name))
        if len(candidates) >= k:
            return candidates
    allowed = np.ones(len(catalog), dtype=bool)
    if item_filter is not None and not item_filter.is_empty():
        allowed &= item_filter.mask(catalog)
    allowed[skip] = False
    allowed[candidates.items] = False
    rest = np.flatnonzero(allowed)[: k - len(candidates)]
    if len(rest):
        _log.debug("%d fallback items from the catalog itself", len(rest))
        tail = Candidates.from_scores(rest, np.zeros(len(rest)), CATALOG_FALLBACK)
        candidates = concat(candidates, tail)
    return candidates
