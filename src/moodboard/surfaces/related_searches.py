"""Related searches of a query: random walks on the query-item graph of the search log
(``surfaces.query_graph``), filled with catalog phrases for queries with little history.

``related_of`` walks from the query's node (or, for a query the log lacks, from the queries
sharing its words) and ranks the queries visited most, without the query itself and its
near-duplicates; catalog phrases fill the list up to ``max_related``: the results' main
article type with its commonest colours and usages, the other article types of its
sub-category, else the commonest word pairs of the top titles, scored below every walked
query. ``surfaces.refinements`` serves them with the chips.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from moodboard.config import RefinementsConfig
from moodboard.surfaces.query_graph import QueryGraph, query_key
from moodboard.surfaces.runner import SurfaceEnv
from moodboard.understand.normalize import normalize_text
from moodboard.understand.parsed import QUERY_WORDS, ParsedQuery

#: The resource name of the version's query graph (``refinements/graph``).
QUERY_GRAPH = "refinements/graph"


@dataclass(frozen=True)
class RelatedSearch:
    """A related query, its score (share of the walks' visits; catalog phrases score below
    every walked query) and where it comes from (``graph`` or ``catalog``)."""

    query: str
    score: float
    source: str


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
    mass = 1.0 / np.log2(np.arange(len(items)) + 2.0)  # the top results count most
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
            w = [
                t
                for t in normalize_text(str(env.catalog.title[i] or "")).split()
                if is_phrase_word(t)
            ]
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


def is_phrase_word(w: str) -> bool:
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
