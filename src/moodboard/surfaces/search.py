"""The search chain: understand -> retrieve (named sources, fused) -> boost -> page order.

Price phrases become hard filters applied inside every source; colours, genders and article
types the query names become boosts on the fused score, so "navy shirt" prefers navy shirts
without hiding good matches whose attributes are missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from moodboard.config import SearchConfig
from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.data import columns as C
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.surfaces.base import fill_page
from moodboard.understand.query import ParsedQuery, QueryUnderstanding

_BOOSTED = (("colours", "baseColour"), ("genders", "gender"), ("article_types", "articleType"))


@dataclass(frozen=True)
class SearchResult:
    """Ranked candidates, what the query was understood as, and the stage timings (ms)."""

    candidates: Candidates
    parsed: ParsedQuery
    timings_ms: dict[str, float] = field(default_factory=dict)


class SearchChain:
    """Runs one search.

    Parameters
    ----------
    catalog
        The items the sources index.
    sources
        Fitted sources by name.
    understand
        Fitted query understanding.
    encode
        Text -> embedding for ``dense/*`` sources (None: dense sources are skipped).
    config
        Source names, fusion and boosts.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Mapping[str, CandidateSource],
        understand: QueryUnderstanding,
        encode: Callable[[list[str]], np.ndarray] | None = None,
        config: SearchConfig | None = None,
    ) -> None:
        self.catalog = catalog
        self.sources = dict(sources)
        self.understand = understand
        self.encode = encode
        self.config = config or SearchConfig()
        self.fuser = Fuser(self.config.fuse)
        self._lower = {
            a: np.array([(v or "").lower() for v in catalog.attribute(a)], dtype=object)
            for _, a in _BOOSTED
        }

    def _filter(self, parsed: ParsedQuery, extra: ItemFilter | None) -> ItemFilter | None:
        price_min = parsed.price_min
        price_max = parsed.price_max
        attrs: dict[str, tuple[str, ...]] = {}
        if extra is not None:
            price_min = extra.price_min if extra.price_min is not None else price_min
            price_max = extra.price_max if extra.price_max is not None else price_max
            attrs = dict(extra.attributes)
        f = ItemFilter(price_min=price_min, price_max=price_max, attributes=attrs)
        return None if f.is_empty() else f

    def _boost(self, parsed: ParsedQuery, cand: Candidates) -> Candidates:
        if len(cand) == 0 or self.config.attribute_boost == 0:
            return cand
        matches = np.zeros(len(cand))
        for field_name, attr in _BOOSTED:
            wanted = {v.lower() for v in getattr(parsed, field_name)}
            if wanted:
                matches += np.isin(self._lower[attr][cand.items], list(wanted))
        if not matches.any():
            return cand
        s = cand.score(C.RETRIEVAL)
        return cand.with_score(
            C.RETRIEVAL, s * (1 + self.config.attribute_boost * matches)
        ).sort_by(C.RETRIEVAL)

    def __call__(
        self,
        text: str,
        k: int = 24,
        item_filter: ItemFilter | None = None,
        exclude: np.ndarray | None = None,
    ) -> SearchResult:
        """Search the catalog; the fallback sources answer when the query finds nothing."""
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        parsed = self.understand(text)
        query_text = parsed.text or parsed.corrected or text
        f = self._filter(parsed, item_filter)
        t["understand"] = (time.perf_counter() - t0) * 1e3
        vector = None
        if self.encode is not None and any(s.startswith("dense/") for s in self.config.sources):
            t1 = time.perf_counter()
            vector = self.encode([query_text])[0]
            t["encode"] = (time.perf_counter() - t1) * 1e3
        q = SourceQuery(text=query_text, vector=vector, item_filter=f, exclude=exclude)
        parts = {}
        for name in self.config.sources:
            if name in self.sources and (vector is not None or not name.startswith("dense/")):
                t1 = time.perf_counter()
                parts[name] = self.sources[name](q, self.config.per_source)
                t[name] = (time.perf_counter() - t1) * 1e3
        t1 = time.perf_counter()
        fused = self._boost(parsed, self.fuser(parts))
        k = min(k, len(self.catalog))  # a page never holds more than the catalog
        fused = fill_page(fused, k, self.catalog, self.sources, self.config.fallback, f, exclude)
        t["fuse"] = (time.perf_counter() - t1) * 1e3
        t["total"] = (time.perf_counter() - t0) * 1e3
        return SearchResult(fused, parsed, t)
