"""Related products of one item (the product page): content neighbours and complements.

The chain: the item's own text and image vectors query the ``dense/*`` and ``visual/*``
sources, and the item itself queries the co-engagement sources (``graph/walks``: items reached
by walks from it, i.e. engaged with by the same people around the same time); their lists are
fused with provenance; items of the item's own category get a boost
(``same_category_boost``); a share of the page (``complement_share``) goes to the item's
complementary categories, learned at build time from co-engagement (``complements.py``), whose
best content neighbours fill evenly spaced slots; near-identical images (cosine >=
``dedup_threshold``, also against the item itself) are dropped, keeping the better-ranked one;
the fallback sources fill what is left. The item itself and ``exclude`` never appear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np

from moodboard.config import RelatedConfig
from moodboard.data import Candidates, Catalog
from moodboard.data import columns as C
from moodboard.errors import NotFoundError
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.surfaces.base import (
    SurfaceResult,
    check_items,
    check_k,
    co_engaged,
    concat,
    dedup_images,
    fill_page,
    item_vectors,
)
from moodboard.surfaces.complements import Complements

_log = logging.getLogger(__name__)

#: The score column holding the lift of a complementary item's category (NaN for the others).
COMPLEMENT = "complement"


def complement_slots(k: int, share: float) -> np.ndarray:
    """The page positions (0-based, below ``k``) of the complementary items: every
    ``1 / share``-th position, so a longer page keeps the slots of a shorter one.

    For ``share = 0.25``: positions 3, 7, 11, 15, ...
    """
    if share <= 0:
        return np.empty(0, dtype=np.int64)
    stride = 1.0 / share
    n = int(np.floor(k * share + 1e-9))
    return (np.floor((np.arange(n) + 1) * stride + 1e-9).astype(np.int64) - 1).clip(0, k - 1)


def interleave(main: Candidates, extra: Candidates, k: int, slots: np.ndarray) -> Candidates:
    """A page of ``k``: ``extra`` at ``slots`` (while it lasts), ``main`` everywhere else.

    Slots ``extra`` cannot fill go to ``main``; the result may be shorter than ``k`` when both
    run out.
    """
    pool = concat(main, extra)
    order: list[int] = []
    m = e = 0
    slot_set = {int(s) for s in slots}
    for pos in range(k):
        if pos in slot_set and e < len(extra):
            order.append(len(main) + e)
            e += 1
        elif m < len(main):
            order.append(m)
            m += 1
        elif e < len(extra):
            order.append(len(main) + e)
            e += 1
        else:
            break
    return pool.take(np.asarray(order, dtype=np.int64))


class RelatedChain:
    """Related products of one item.

    Parameters
    ----------
    catalog
        The items.
    sources
        Fitted sources by name; the content sources (``config.sources``) must hold item
        vectors (``item_vectors()``); names that are not loaded are skipped. The loaded
        sources without item vectors among ``config.sources`` (``graph/walks``) are queried
        with the item itself.
    complements
        Complementary categories learned at build time (None: no complementary slots).
    config
        Source names, fusion, boosts, complement share and deduplication.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Mapping[str, CandidateSource],
        complements: Complements | None = None,
        config: RelatedConfig | None = None,
    ) -> None:
        self.catalog = catalog
        self.sources = dict(sources)
        self.complements = complements or Complements()
        self.config = config or RelatedConfig()
        self.fuser = Fuser(self.config.fuse)
        names, codes = np.unique(
            np.asarray([c or "" for c in catalog.category], dtype=str), return_inverse=True
        )
        self._category_code = {str(c): j for j, c in enumerate(names) if c}
        self._category_codes = codes.ravel()

    def _neighbours(
        self, item: int, k: int, exclude: np.ndarray, t: dict[str, float]
    ) -> Candidates:
        """The fused content neighbours of ``item`` among the items not in ``exclude``."""
        parts = {}
        for name in self.config.sources:
            vectors = item_vectors(self.sources, name)
            if vectors is None or not np.any(vectors[item]):  # e.g. the item has no image
                continue
            t1 = time.perf_counter()
            query = SourceQuery(vector=vectors[item], items=np.array([item]), exclude=exclude)
            parts[name] = self.sources[name](query, max(self.config.per_source, k))
            t[name] = t.get(name, 0.0) + (time.perf_counter() - t1) * 1e3
        k = max(self.config.per_source, k)
        parts |= co_engaged(self.sources, self.config.sources, np.array([item]), k, exclude, t)
        return self.fuser(parts)

    def _same_category_boost(self, item: int, cand: Candidates) -> Candidates:
        category = self.catalog.category[item]
        if len(cand) == 0 or not category or self.config.same_category_boost == 0:
            return cand
        same = self.catalog.category[cand.items] == category
        s = cand.score(C.RETRIEVAL) * (1 + self.config.same_category_boost * same)
        return cand.with_score(C.RETRIEVAL, s).sort_by(C.RETRIEVAL)

    def _complementary(
        self, item: int, k: int, exclude: np.ndarray, t: dict[str, float]
    ) -> Candidates:
        """Content neighbours of ``item`` in its complementary categories (``COMPLEMENT``: lift)."""
        cfg = self.config
        comps = self.complements.of(self.catalog.category[item], cfg.complement_categories)
        if not comps or cfg.complement_share == 0:
            return Candidates.empty()
        lift = {c.category: c.lift for c in comps}
        wanted = [self._category_code[c] for c in lift if c in self._category_code]
        allowed = np.isin(self._category_codes, wanted)
        allowed[exclude] = False
        if not allowed.any():
            return Candidates.empty()
        cand = self._neighbours(item, k, np.flatnonzero(~allowed), t)
        cats = self.catalog.category[cand.items]
        lifts = np.array([lift[c] for c in cats], dtype=np.float64)
        return cand.with_score(COMPLEMENT, lifts)

    def __call__(self, item: int, k: int = 24, exclude: np.ndarray | None = None) -> SurfaceResult:
        """The related products of ``item``, in page order.

        Parameters
        ----------
        item
            The product's internal index.
        k
            The page size.
        exclude
            Item indices never to return (e.g. already shown); the item itself never is.

        Returns
        -------
        SurfaceResult
            Up to ``k`` items (fewer only when the catalog has fewer others), in page order:
            complementary items sit at evenly spaced slots and carry a ``complement`` score
            (the lift of their category); popular items fill what the sources cannot.

        Raises
        ------
        NotFoundError
            If ``item`` or an ``exclude`` index is not in the catalog.
        ConfigError
            If ``k`` is not an int >= 1.
        """
        k = min(check_k(k, "RelatedChain"), max(1, len(self.catalog)))  # never past the catalog
        n = len(self.catalog)
        if isinstance(item, bool) or not isinstance(item, int | np.integer) or not 0 <= item < n:
            raise NotFoundError(
                f"The 'item' parameter of RelatedChain must be an item index in [0, {n}). "
                f"Got {item!r} instead."
            )
        item = int(item)
        cfg = self.config
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        skip = np.unique(np.concatenate([[item], check_items(exclude, n, "exclude")]))
        main = self._same_category_boost(item, self._neighbours(item, k, skip, t))
        slots = complement_slots(k, cfg.complement_share)
        comp = Candidates.empty()
        if len(slots):
            comp = self._complementary(item, k, skip, t)
        t1 = time.perf_counter()
        dedup = item_vectors(self.sources, cfg.dedup_source)
        comp = dedup_images(comp, dedup, cfg.dedup_threshold, np.array([item]), len(slots))
        anchors = np.concatenate([[item], comp.items]).astype(np.int64)
        main = dedup_images(main.exclude(comp.items), dedup, cfg.dedup_threshold, anchors, k)
        page = interleave(main, comp, k, slots)
        t["dedup"] = (time.perf_counter() - t1) * 1e3
        page = fill_page(page, k, self.catalog, self.sources, cfg.fallback, exclude=skip)
        t["total"] = (time.perf_counter() - t0) * 1e3
        return SurfaceResult(page.head(k), t)
