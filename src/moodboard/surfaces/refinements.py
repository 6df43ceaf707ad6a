"""Refinement chips and related searches of a query (``GET /refinements``).

``refinements(engine.search, query, user)`` runs the search chain for the query as ``/search``
does, up to its rank stage (``Surface.rank_input``: the same candidates in their fused order; the
ranker would only reorder the first ``rank.lambdamart.depth`` of them, at a third of the
cost), and reads the first ``depth`` results:

- **Chips**: each facet (a catalog attribute of ``facets``; price bands when products have
  prices; the terms most co-engaged with the query's, from the related searches) splits the
  results into refined sets. A value found in at least ``min_support`` results is a chip,
  scored by its narrowing value ``e x (1 - c)``: ``e`` the refined set's share of the
  results' mass (each result weighs ``(1 + log1p(engagements)) / log2(rank + 2)``, so the
  top results and the items shoppers engage with count most) and ``c`` its share of the
  results (a value every result has narrows nothing). Facets the query already names (its
  colours, genders, article types, price bounds, or the value's own words) are skipped. A
  chip's ``query`` is the refined query text the parser understands ("navy blue shirts"),
  its ``filter`` the attribute filter that applies it exactly (``baseColour:Navy Blue``).
- **Related searches** (``surfaces.related_searches``): random walks with restart on the
  query-item graph the build learned from the search log (``surfaces.query_graph``), from
  the query's node or, for a query the log lacks, from the queries sharing its words;
  queries visited most come first, without the query itself and near-duplicates. Catalog
  phrases fill the list for queries with little history.

Deterministic given the config's seed. A query without a word gets empty lists.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from moodboard.config import RefinementsConfig
from moodboard.data import ItemFilter, Request, new_request_id
from moodboard.surfaces.compose import ENGAGEMENT
from moodboard.surfaces.modules import with_modules
from moodboard.surfaces.query_graph import query_key
from moodboard.surfaces.related_searches import RelatedSearch, is_phrase_word, related_of
from moodboard.surfaces.runner import Surface, SurfaceEnv
from moodboard.surfaces.search import BOOSTED
from moodboard.understand.normalize import normalize_text
from moodboard.understand.parsed import ParsedQuery

_log = logging.getLogger(__name__)

#: Pseudo-facets: price bands and co-engaged terms.
PRICE, TERM = "price", "term"
#: Facets whose chip adds its value after the query ("casual" -> "casual tshirts").
_SUFFIX = ("articleType",)


@dataclass(frozen=True)
class Chip:
    """One refinement: its ``label``, the refined ``query``, the ``facet`` and ``value`` it
    narrows by, the ``filter`` that applies it exactly (None for price bands and terms: their
    query text does), how many results it keeps (``support``) and its narrowing ``score``."""

    label: str
    query: str
    facet: str
    value: str
    filter: str | None
    support: int
    score: float


@dataclass(frozen=True)
class Refinements:
    """Chips and related searches of one query, with the request id and timings."""

    request_id: str
    chips: tuple[Chip, ...] = ()
    related_searches: tuple[RelatedSearch, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of ``GET /refinements``."""
        return {
            "request_id": self.request_id,
            "chips": [asdict(c) for c in self.chips],
            "related_searches": [asdict(r) for r in self.related_searches],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }


def result_mass(ranks: int, engagements: np.ndarray) -> np.ndarray:
    """Each result's weight: ``(1 + log1p(engagements)) / log2(rank + 2)``."""
    return (1.0 + np.log1p(np.maximum(engagements, 0))) / np.log2(np.arange(ranks) + 2.0)


def rank_chips(
    splits: dict[str, np.ndarray], mass: np.ndarray, cfg: RefinementsConfig
) -> list[tuple[str, str, int, float]]:
    """The chips of facet splits, best first: ``(facet, value, support, score)``.

    Parameters
    ----------
    splits
        Facet -> each result's value (object array, None where it has none).
    mass
        Each result's weight (``result_mass``).
    cfg
        ``min_support``, ``max_per_facet`` and ``max_chips``.
    """
    n, total = len(mass), float(mass.sum())
    found: list[tuple[str, str, int, float]] = []
    for facet, values in splits.items():
        counts = Counter(v for v in values.tolist() if v is not None and v != "")
        mine = []
        for value, support in counts.items():
            if support < cfg.min_support or support == n:
                continue
            e = float(mass[values == value].sum()) / total
            mine.append((facet, str(value), support, e * (1.0 - support / n)))
        mine.sort(key=lambda c: (-c[3], c[1]))
        found += mine[: cfg.max_per_facet]
    found.sort(key=lambda c: (-c[3], c[0], c[1]))
    return found[: cfg.max_chips]


def _named(parsed: ParsedQuery) -> set[str]:
    """The facets the query names already."""
    named = {attr for field_name, attr in BOOSTED if getattr(parsed, field_name)}
    return named | (
        {PRICE} if parsed.price_min is not None or parsed.price_max is not None else set()
    )


def _price_bands(price: np.ndarray, bands: int) -> np.ndarray:
    """Each result's price band ("under $20", "$20 to $40", "over $40"; None unpriced)."""
    out = np.full(len(price), None, dtype=object)
    ok = np.isfinite(price)
    if bands < 2 or ok.sum() < bands:
        return out
    edges = np.unique(np.round(np.quantile(price[ok], np.linspace(0, 1, bands + 1)[1:-1])))
    for j in range(len(edges) + 1):
        lo = edges[j - 1] if j else None
        hi = edges[j] if j < len(edges) else None
        label = f"under ${hi:g}" if lo is None else f"over ${lo:g}" if hi is None else (
            f"${lo:g} to ${hi:g}")  # fmt: skip
        sel = ok & (price >= (lo if lo is not None else -np.inf))
        sel &= price < (hi if hi is not None else np.inf)
        out[sel] = label
    return out


def _chip_query(base: str, facet: str, value: str) -> str:
    """The refined query text: the value before the query, an article type or a price band
    after it."""
    v = value if facet == PRICE else normalize_text(value)
    return f"{base} {v}" if facet in (*_SUFFIX, PRICE) else f"{v} {base}"


def _tokens(env: SurfaceEnv, items: np.ndarray) -> list[frozenset[str]]:
    """The words of each item's search text (memoized per item)."""
    memo: dict[int, frozenset[str]] = env.memo("refine/tokens", dict)
    out = []
    for i in items.tolist():
        t = memo.get(i)
        if t is None:
            t = memo[i] = frozenset(normalize_text(env.catalog.search_text(i)).split())
        out.append(t)
    return out


def co_terms(related: Sequence[RelatedSearch], query: str, k: int) -> list[str]:
    """The ``k`` words most visited in the related searches the walks found, without the
    query's own words (in any number: "dresses" for "dress") and query grammar."""
    own = set(query_key(query))
    score: Counter[str] = Counter()
    for r in related:
        if r.source == "graph":
            for w in set(r.query.split()):
                if is_phrase_word(w) and query_key(w)[0] not in own:
                    score[w] += r.score
    return [w for w, _ in sorted(score.items(), key=lambda x: (-x[1], x[0]))[:k]]


def chips_of(
    env: SurfaceEnv,
    items: np.ndarray,
    parsed: ParsedQuery,
    terms: Sequence[str],
    cfg: RefinementsConfig,
) -> tuple[Chip, ...]:
    """The chips of a result list (``items``, best first) for the parsed query."""
    if len(items) == 0 or cfg.max_chips == 0:
        return ()
    words = set(parsed.tokens)
    named = _named(parsed)
    splits: dict[str, np.ndarray] = {}
    for facet in cfg.facets:
        if facet in named or facet not in env.catalog.attributes:
            continue
        values = env.catalog.attributes[facet][items].copy()
        for v in set(values.tolist()) - {None}:
            if set(normalize_text(str(v)).split()) <= words:  # "casual tshirts": not Casual
                values[values == v] = None
        splits[facet] = values
    if PRICE not in named and cfg.price_bands:
        splits[PRICE] = _price_bands(env.catalog.price[items], cfg.price_bands)
    covered = {
        w for v in splits.values() for x in set(v.tolist()) - {None} for w in str(x).lower().split()
    }
    terms = [t for t in terms if t not in covered]  # a facet's value says it better
    if terms:
        toks = _tokens(env, items)
        for t in terms:
            splits[f"{TERM}:{t}"] = np.array([t if t in s else None for s in toks], dtype=object)
    engagement = env.resources.get(ENGAGEMENT)
    eng = np.zeros(len(items))
    if engagement is not None:
        full = env.memo("refine/engagement", lambda: engagement.aligned(env.catalog.ids))
        eng = full["engagements"][items]
    base = parsed.corrected or parsed.normalized
    out, seen = [], set()
    for facet, value, support, score in rank_chips(splits, result_mass(len(items), eng), cfg):
        facet = TERM if facet.startswith(TERM) else facet
        query = _chip_query(base, facet, value)
        if query_key(query) in seen:
            continue
        seen.add(query_key(query))
        exact = None if facet in (PRICE, TERM) else f"{facet}:{value}"
        label = value if facet != TERM else value.capitalize()
        out.append(Chip(label, query, facet, value, exact, support, round(score, 6)))
    return tuple(out)


def refinements(
    surface: Surface,
    query: str,
    user: str | None = None,
    *,
    item_filter: ItemFilter | None = None,
    config: RefinementsConfig | None = None,
) -> Refinements:
    """Chips and related searches of ``query`` (see the module docstring).

    Parameters
    ----------
    surface
        The search surface (``engine.search``): its chain (to the rank stage) finds the
        results the chips split;
        its resources hold the query graph (``related_searches.QUERY_GRAPH``) and item
        engagement.
    query
        The query as typed; one without a word gets empty lists.
    user
        The shopper (None or unknown: anonymous), as the search chain sees them.
    item_filter
        The filter the search page applies (the chips refine its results).
    config
        Default: the surface's ``refinements`` section (``[surfaces.search.refinements]``).

    Returns
    -------
    Refinements
        Chips best first, related searches best first, and the stages' milliseconds.

    Raises
    ------
    InputError
        If the search chain refuses the request.
    """
    cfg = config or surface.config.refinements
    rid = new_request_id()
    if not normalize_text(query or ""):
        return Refinements(rid)
    t0 = time.perf_counter()
    req = Request(
        surface=surface.name, query=query, user_id=user, k=cfg.depth, item_filter=item_filter,
        request_id=rid,
    )  # fmt: skip
    prepared, fused = with_modules(surface, False).rank_input(req)  # before the ranker, no rows
    parsed = prepared.context["parsed"]
    items = np.asarray(fused.items[: cfg.depth], dtype=np.int64)
    t1 = time.perf_counter()
    related = related_of(surface.env, items, parsed, query, cfg)
    t2 = time.perf_counter()
    terms = co_terms(related, parsed.normalized, cfg.co_terms)
    chips = chips_of(surface.env, items, parsed, terms, cfg)
    t3 = time.perf_counter()
    ms = {"search": t1 - t0, "related": t2 - t1, "chips": t3 - t2, "total": t3 - t0}
    ms = {k: v * 1e3 for k, v in ms.items()} | dict(prepared.timings_ms)  # understand, encode
    return Refinements(rid, chips, tuple(related), ms)
