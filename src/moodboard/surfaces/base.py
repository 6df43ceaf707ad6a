"""What every surface shares: its result type, argument checks, and the fallback that fills a page.

``fill_page`` tops a surface's candidates up to ``k`` from its fallback sources (popular items
by default) and, as a last resort, from the catalog in index order, always within the request's
filter and exclusions. So a page is short only when the filter and exclusions leave fewer than
``k`` items, and empty only when they leave none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.data import columns as C
from moodboard.errors import ConfigError, NotFoundError
from moodboard.retrieve import CandidateSource, SourceQuery
from moodboard.retrieve.base import check_k as check_k  # re-exported for the surfaces

_log = logging.getLogger(__name__)

#: The provenance of items the last-resort fallback took from the catalog itself.
CATALOG_FALLBACK = "fallback/catalog"


@dataclass(frozen=True)
class SurfaceResult:
    """A surface's ranked candidates (page order) and its stage timings in milliseconds."""

    candidates: Candidates
    timings_ms: dict[str, float] = field(default_factory=dict)


def item_vectors(sources: Mapping[str, CandidateSource], name: str) -> np.ndarray | None:
    """The item vectors of a loaded vector source (``dense/*``, ``visual/*``), else None."""
    source = sources.get(name)
    vectors = None if source is None else source.item_vectors()
    return None if vectors is None else np.asarray(vectors)


def co_engaged(
    sources: Mapping[str, CandidateSource],
    names: Sequence[str],
    items: np.ndarray,
    k: int,
    exclude: np.ndarray,
    t: dict[str, float],
) -> dict[str, Candidates]:
    """The lists of the loaded sources among ``names`` that have no item vectors (the
    co-engagement sources: ``graph/walks``, ``user_interests``), queried with the seed
    ``items``, with their times in ``t`` (ms)."""
    parts = {}
    query = SourceQuery(items=items, exclude=exclude)
    for name in names:
        if name in sources and item_vectors(sources, name) is None:
            t1 = time.perf_counter()
            parts[name] = sources[name](query, k)
            t[name] = t.get(name, 0.0) + (time.perf_counter() - t1) * 1e3
    return parts


def check_items(items: object, n: int, what: str) -> np.ndarray:
    """Item indices as a unique-preserving ``int64`` array, each in ``[0, n)``.

    Raises
    ------
    NotFoundError
        If an index is outside the catalog.
    ConfigError
        If ``items`` is not a sequence of integers.
    """
    arr = np.asarray([] if items is None else items)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(
            f"The {what!r} parameter must hold integer item indices. Got dtype {arr.dtype} "
            "instead: map external ids with catalog.ids.indices first."
        )
    arr = arr.astype(np.int64).ravel()
    bad = arr[(arr < 0) | (arr >= n)]
    if len(bad):
        raise NotFoundError(
            f"The {what!r} parameter names item index {int(bad[0])}, which is not in the "
            f"catalog of {n} items (valid indices are 0..{n - 1})."
        )
    _, first = np.unique(arr, return_index=True)
    return arr[np.sort(first)]


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


def dedup_images(
    candidates: Candidates,
    vectors: np.ndarray | None,
    threshold: float | None,
    anchors: np.ndarray | None = None,
    limit: int | None = None,
) -> Candidates:
    """Drop items whose image is a near-duplicate of a better-ranked one (or of an anchor).

    Greedy in page order: an item is kept unless its image cosine with a kept item or an
    anchor (e.g. the product the page is about) is ``>= threshold``. Items without an image
    (an all-zero vector) are never duplicates.

    Parameters
    ----------
    candidates
        Best first.
    vectors
        Unit-norm image vectors of every catalog item (zero rows for items without one);
        None disables deduplication.
    threshold
        Cosine at or above which two images are the same; None disables deduplication.
    anchors
        Items that count as already kept.
    limit
        Stop after keeping this many (the page needs no more); None: go through all.
    """
    if vectors is None or threshold is None or len(candidates) == 0:
        return candidates if limit is None else candidates.head(limit)
    limit = len(candidates) if limit is None else min(limit, len(candidates))
    anchors = np.asarray([] if anchors is None else anchors, dtype=np.int64)
    kept = np.empty((len(anchors) + limit, vectors.shape[1]), dtype=np.float32)
    n = 0
    for a in anchors:
        v = vectors[a]
        if v.any():
            kept[n], n = v, n + 1
    keep: list[int] = []
    for j, i in enumerate(candidates.items):
        v = np.asarray(vectors[i], dtype=np.float32)
        has = bool(v.any())
        if has and n and float((kept[:n] @ v).max()) >= threshold:
            continue
        keep.append(j)
        if has:
            kept[n], n = v, n + 1
        if len(keep) >= limit:
            break
    dropped = min(len(candidates), keep[-1] + 1 if keep else 0) - len(keep)
    if dropped:
        _log.debug("removed %d near-duplicate images", dropped)
    return candidates.take(np.asarray(keep, dtype=np.int64))
