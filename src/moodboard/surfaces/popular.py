"""The popular surface: trending items within optional filters (the home page's first row).

Every other surface ends with the same fallback (``base.fill_page``), so a page is never empty
while the catalog and the request's filter allow items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np

from moodboard.config import PopularChainConfig
from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.surfaces.base import SurfaceResult, check_items, check_k, fill_page

_log = logging.getLogger(__name__)


class PopularChain:
    """Popular items, best first.

    Parameters
    ----------
    catalog
        The items.
    sources
        Fitted sources by name (``popular/trending`` by default).
    config
        Source names (fused when several) and fallback names.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Mapping[str, CandidateSource],
        config: PopularChainConfig | None = None,
    ) -> None:
        self.catalog = catalog
        self.sources = dict(sources)
        self.config = config or PopularChainConfig()
        self.fuser = Fuser(self.config.fuse)

    def __call__(
        self,
        k: int = 24,
        item_filter: ItemFilter | None = None,
        exclude: np.ndarray | None = None,
    ) -> SurfaceResult:
        """The ``k`` most popular items that pass ``item_filter`` and are not in ``exclude``.

        Returns
        -------
        SurfaceResult
            ``k`` items, fewer only when the filter and exclusions allow fewer; the
            ``retrieval`` score is the popularity (one source) or the fused score.

        Raises
        ------
        NotFoundError
            If an ``exclude`` index is not in the catalog.
        ConfigError
            If ``k`` is not an int >= 1.
        """
        k = min(check_k(k, "PopularChain"), max(1, len(self.catalog)))  # never past the catalog
        skip = check_items(exclude, len(self.catalog), "exclude")
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        query = SourceQuery(item_filter=item_filter, exclude=skip)
        parts: dict[str, Candidates] = {}
        many = len(self.config.sources) > 1  # fused lists need depth; one list needs k
        for name in self.config.sources:
            if name in self.sources:
                t1 = time.perf_counter()
                parts[name] = self.sources[name](
                    query, max(k, self.config.per_source) if many else k
                )
                t[name] = (time.perf_counter() - t1) * 1e3
        cand = next(iter(parts.values())) if len(parts) == 1 else self.fuser(parts, k)
        page = fill_page(
            cand, k, self.catalog, self.sources, self.config.fallback, item_filter, skip
        )
        t["total"] = (time.perf_counter() - t0) * 1e3
        return SurfaceResult(page.head(k), t)
