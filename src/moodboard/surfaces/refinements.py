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
- **Related searches**: random walks with restart on the query-item graph the build learned
  from the search log (``surfaces.query_graph``), from the query's node or, for a query the
  log lacks, from the queries sharing its words; queries visited most come first, without
  the query itself and near-duplicates. Catalog phrases fill the list for queries with
  little history: the results' main article type with its commonest colours and usages,
  the other article types of its sub-category, else the commonest title word pairs.

Deterministic given the config's seed. A query without a word gets empty lists.
"""

from __future__ import annotations

import itertools
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
from moodboard.surfaces.query_graph import QueryGraph, query_key
from moodboard.surfaces.runner import Surface, SurfaceEnv
from moodboard.surfaces.search import BOOSTED
from moodboard.understand.normalize import normalize_text
from moodboard.understand.parsed import QUERY_WORDS, ParsedQuery

_log = logging.getLogger(__name__)

#: The resource name of the version's query graph (``refinements/graph``).
QUERY_GRAPH = "refinements/graph"
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
class RelatedSearch:
    """A related query, its score (share of the walks' visits; catalog phrases score below
    every walked query) and where it comes from (``graph`` or ``catalog``)."""

    query: str
    score: float
    source: str


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


def co_terms(related: Sequence[RelatedSearch], words: set[str], k: int) -> list[str]:
    """The ``k`` words most visited in the related searches the walks found, without the
    query's own words and query grammar."""
    score: Counter[str] = Counter()
    for r in related:
        if r.source == "graph":
            for w in set(r.query.split()) - words:
                if _word(w):
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


def walked(graph: QueryGraph | None, query: str, cfg: RefinementsConfig) -> list[RelatedSearch]:
    """Related searches by random walks on the query graph (empty without a graph or for a
    query none of whose words the log has)."""
    if graph is None or cfg.max_related == 0:
        return []
    seeds, weights = graph.seeds(query)
    visits = graph.walk(seeds, weights, cfg.walkers, cfg.walk_steps, cfg.restart, cfg.seed)
    total = float(visits.sum())
    seen = {query_key(query)}
    out = []
    for i in np.lexsort((np.arange(len(visits)), -visits)).tolist():
        if visits[i] <= 0 or len(out) == cfg.max_related:
            break
        q = graph.queries[i]
        if query_key(q) not in seen:
            seen.add(query_key(q))
            out.append(RelatedSearch(q, round(float(visits[i]) / total, 6), "graph"))
    return out


def _commonest(values: np.ndarray, mass: np.ndarray) -> list[str]:
    """Distinct non-empty values, heaviest total mass first."""
    got: Counter[str] = Counter()
    for v, m in zip(values.tolist(), mass.tolist(), strict=True):
        if v:
            got[str(v)] += m
    return [v for v, _ in sorted(got.items(), key=lambda x: (-x[1], x[0]))]


def catalog_phrases(env: SurfaceEnv, items: np.ndarray, parsed: ParsedQuery) -> list[str]:
    """Phrases of the catalog near the results: their main article type with its commonest
    colours and usages, the other article types of its sub-category, then the commonest
    word pairs of their titles."""
    attrs = env.catalog.attributes  # (Catalog.attribute makes a column of None for a miss)
    none = np.full(env.catalog.price.shape, None, dtype=object)
    mass = result_mass(len(items), np.zeros(len(items)))
    out: list[str] = []
    if "articleType" in attrs and len(items):
        types = attrs["articleType"]
        main = (list(parsed.article_types) or _commonest(types[items], mass) or [None])[0]
        if main:
            mine = items[types[items] == main]
            weight = mass[: len(mine)]
            for facet in ("baseColour", "usage"):
                values = attrs.get(facet, none)[mine]
                out += [f"{v} {main}" for v in _commonest(values, weight)[:3]]
            sub = _commonest(attrs.get("subCategory", none)[mine], weight)[:1]
            if sub:
                out += [t for t in _types_of(env)[sub[0]] if t != main]
    if not out:  # a catalog without article types: the titles' commonest word pairs
        pairs: Counter[str] = Counter()
        for i in items[:50].tolist():
            w = [t for t in normalize_text(str(env.catalog.title[i] or "")).split() if _word(t)]
            pairs.update({f"{a} {b}" for a, b in itertools.pairwise(w)})
        out += [p for p, n in sorted(pairs.items(), key=lambda x: (-x[1], x[0])) if n >= 2]
    return [normalize_text(p) for p in out]


def _types_of(env: SurfaceEnv) -> dict[str, list[str]]:
    """Each sub-category's article types, commonest first (memoized)."""

    def make() -> dict[str, list[str]]:
        a = env.catalog.attributes
        pairs = Counter(zip(a["subCategory"].tolist(), a["articleType"].tolist(), strict=True))
        out: dict[str, list[str]] = {}
        for (sub, t), _ in sorted(pairs.items(), key=lambda x: (-x[1], str(x[0]))):
            if sub and t:
                out.setdefault(str(sub), []).append(str(t))
        return out

    return env.memo("refine/types", make)


def _word(w: str) -> bool:
    """A word worth a phrase or a term chip: 3+ letters, not query grammar."""
    return len(w) >= 3 and w.isalpha() and w not in QUERY_WORDS


def related_of(
    env: SurfaceEnv, items: np.ndarray, parsed: ParsedQuery, query: str, cfg: RefinementsConfig
) -> list[RelatedSearch]:
    """Walked related searches, filled with catalog phrases up to ``max_related``."""
    out = walked(env.resources.get(QUERY_GRAPH), query, cfg)
    if len(out) >= cfg.max_related:
        return out
    seen = {query_key(query)} | {query_key(r.query) for r in out}
    low = min((r.score for r in out), default=1.0)
    phrases = catalog_phrases(env, items, parsed)
    for j, p in enumerate(phrases):
        if len(out) == cfg.max_related:
            break
        if p and query_key(p) not in seen:
            seen.add(query_key(p))
            out.append(
                RelatedSearch(p, round(low * (1.0 - (j + 1) / (len(phrases) + 1)), 6), "catalog")
            )
    return out


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
        its resources hold the query graph (``QUERY_GRAPH``) and item engagement.
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
    terms = co_terms(related, set(parsed.tokens), cfg.co_terms)
    chips = chips_of(surface.env, items, parsed, terms, cfg)
    t3 = time.perf_counter()
    ms = {"search": t1 - t0, "related": t2 - t1, "chips": t3 - t2, "total": t3 - t0}
    ms = {k: v * 1e3 for k, v in ms.items()} | dict(prepared.timings_ms)  # understand, encode
    return Refinements(rid, chips, tuple(related), ms)
