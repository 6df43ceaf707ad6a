"""The search surface's own steps: ``prepare/search`` (understand the query, embed it) and
``blend/boost`` (attribute boosts).

Price phrases become hard filters applied inside every source. Colours, genders, article
types and usages the query names (those the catalog has) make a must-match-first order: items
with all of them come first, unisex ones next where a gender is named, then the rest, each group
in the ranked order, so "navy shirt" shows navy shirts first without hiding good matches whose
attributes are missing; a filtered probe asks the sources for such items too, and an unranked
list is boosted by its matches. The chain: ``prepare/search -> lexical/bm25 + dense/text ->
fuse/rrf -> rank/lambdamart -> blend/boost -> fallback/popular``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from moodboard.blend import boost_matches, concat
from moodboard.data import Candidates, ItemFilter, Request
from moodboard.errors import InputError
from moodboard.rank.personal import FEATURES_KEY, HISTORY_KEY, PersonalFeatures
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.feed import user_history
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, SurfaceEnv
from moodboard.surfaces.search_modules import compose_explore, explore_modules
from moodboard.surfaces.steps import register_blend, register_prepare
from moodboard.understand.query import ParsedQuery

#: Query fields boosted and the catalog attribute each matches.
BOOSTED = (
    ("colours", "baseColour"),
    ("genders", "gender"),
    ("article_types", "articleType"),
    ("usages", "usage"),
)
#: The further list of the filtered probe, and the gender that is a second-best gender match.
ATTRIBUTES_LIST = "attributes"
UNISEX = "unisex"


def _lowered(env: SurfaceEnv) -> dict[str, np.ndarray]:
    """Each boosted attribute's values, lowercased ("" when missing), once per environment."""
    return env.memo(
        "boost/lower",
        lambda: {
            a: np.array([(v or "").lower() for v in env.catalog.attribute(a)], dtype=object)
            for _, a in BOOSTED
        },
    )


def named_attributes(parsed: ParsedQuery, env: SurfaceEnv) -> dict[str, tuple[str, ...]]:
    """Catalog attribute -> the lowercased values the query names that some product has (none
    on a catalog without these attributes, so the step is inert there)."""
    present = env.memo(
        "search/present", lambda: {a: frozenset(v) - {""} for a, v in _lowered(env).items()}
    )
    out: dict[str, tuple[str, ...]] = {}
    for field_name, attr in BOOSTED:
        values = tuple(v.lower() for v in getattr(parsed, field_name) if v.lower() in present[attr])
        if values:
            out[attr] = values
    return out


def _filter(parsed: ParsedQuery, extra: ItemFilter | None, priced: bool) -> ItemFilter | None:
    """The query's price phrases (none when no product has a price: a bound keeps only priced
    products, so "drill under $50" would find nothing), overridden by the request's filter."""
    price_min = parsed.price_min if priced else None
    price_max = parsed.price_max if priced else None
    attrs: dict[str, tuple[str, ...]] = {}
    if extra is not None:
        price_min = extra.price_min if extra.price_min is not None else price_min
        price_max = extra.price_max if extra.price_max is not None else price_max
        attrs = dict(extra.attributes)
    f = ItemFilter(price_min=price_min, price_max=price_max, attributes=attrs)
    return None if f.is_empty() else f


def search_text(parsed: ParsedQuery, raw: str) -> str:
    """The text the sources search for: the understood query, else the corrected, else raw."""
    return parsed.text or parsed.corrected or raw


@register_prepare("prepare/search")
def prepare_search(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Understand ``request.query`` (``understand`` resource) and embed it for the ``dense/*``
    sources (``encode`` resource; without one they are not asked).

    Raises
    ------
    InputError
        If the query holds no word.
    """
    cfg = env.config
    t0 = time.perf_counter()
    text = request.query or ""
    if not text.strip():
        raise InputError("The 'q' parameter must contain a word. Got only spaces instead.")
    parsed = env.resources["understand"](text)
    query_text = search_text(parsed, text)
    priced = env.memo("search/priced", lambda: bool(np.isfinite(env.catalog.price).any()))
    f = _filter(parsed, request.item_filter, priced)
    timings = {"understand": (time.perf_counter() - t0) * 1e3}
    vector = None
    encode = env.resources.get("encode")
    if encode is not None and any(s.startswith("dense/") for s in cfg.sources):
        t1 = time.perf_counter()
        vector = encode([query_text])[0]
        timings["encode"] = (time.perf_counter() - t1) * 1e3
    exclude = env.indices(request.exclude)
    q = SourceQuery(text=query_text, vector=vector, item_filter=f, exclude=exclude)
    probes = {
        name: Probe(q)
        for name in cfg.sources
        if vector is not None or not name.startswith("dense/")
    }
    named = named_attributes(parsed, env)
    context: dict[str, Any] = {"parsed": parsed, "text": query_text, "vector": vector}
    context |= {ATTRIBUTES_LIST: named, **_interests(request, env)}
    lists: dict[str, dict[str, Probe]] = {}
    if named and cfg.attribute_first and cfg.attribute_probe:
        attrs = {**named, **(f.attributes if f is not None else {})}  # the request's own win
        narrowed = (f or ItemFilter()).model_copy(update={"attributes": attrs})
        lists[ATTRIBUTES_LIST] = {
            n: Probe(replace(p.query, item_filter=narrowed))
            for n, p in probes.items()
            if n not in cfg.main_list_only
        }
    modules, rows, ms = explore_modules(parsed, query_text, request, env, q, named)
    if modules:  # a broad query: its rows of sub-searches, ranked with the grid
        key = request.session if request.session is not None else request.request_id
        context |= {"modules": modules, "module_key": key, "user": request.user_id}
        timings["encode_modules"] = ms
        lists |= rows
    return Prepared(
        probes,
        cfg.per_source,
        lists=lists,
        item_filter=f,
        exclude=exclude,
        rank=rank_query(request, env.resources, query_text, context),
        context=context,
        timings_ms=timings,
        rank_lists=bool(modules),
        list_depth=cfg.modules.depth if modules else None,
    )


def _interests(request: Request, env: SurfaceEnv) -> dict[str, Any]:
    """The shopper's history (the request's ``items``, else the built one and the actions
    accepted since: ``surfaces.feed``'s) and a function giving the catalog's
    ``PersonalFeatures``, for a personalizing rank stage (none without a history)."""
    if not request.user_id and not request.items:
        return {}
    items, weights = user_history(request, env)
    if len(items) == 0:
        return {}
    if weights is None:
        weights = np.ones(len(items), dtype=np.float64)

    def facts() -> PersonalFeatures:  # fitted on the first personalized page only
        dense = env.sources.get("dense/text")
        vectors = None if dense is None else dense.item_vectors()
        return env.memo("search/personal", lambda: PersonalFeatures.fit(env.catalog, vectors))

    return {FEATURES_KEY: facts, HISTORY_KEY: (items, weights)}


def match_tiers(
    items: np.ndarray, named: Mapping[str, tuple[str, ...]], env: SurfaceEnv
) -> np.ndarray:
    """Per item: 0 when it has every named value, 1 when it does save a named gender it has as
    unisex, 2 otherwise."""
    lower = _lowered(env)
    exact = np.ones(len(items), dtype=bool)
    loose = np.ones(len(items), dtype=bool)
    for attr, values in named.items():
        have = lower[attr][items]
        hit = np.isin(have, list(values))
        exact &= hit
        loose &= hit | ((have == UNISEX) if attr == "gender" else False)
    return np.where(exact, 0, np.where(loose, 1, 2))


@register_blend("blend/boost")
def blend_boost(retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv) -> Candidates:
    """Must-match-first, then ``retrieval x (1 + attribute_boost x matches)``.

    With ``attribute_first``, the items of the filtered probe join the list after it, and the
    items with every value the query names come first, unisex ones next where it names a
    gender, then the rest, each group in its order. A list a ranker has ordered (an ``ltr`` or
    ``utility`` score) is not boosted: the learned ranker sees the same matches as its
    ``attr_match`` feature, and re-sorting by the boosted retrieval score would undo its order.
    A broad query's page then starts with the rows of its sub-searches
    (``search_modules.compose_explore``).
    """
    cand = _boosted(retrieved.main, prepared, env)
    if env.config.attribute_first:
        cand = attributes_first(cand, retrieved, prepared, env)
    return compose_explore(cand, retrieved, prepared, env)


def attributes_first(
    cand: Candidates, retrieved: Retrieved, prepared: Prepared, env: SurfaceEnv
) -> Candidates:
    """``cand`` with the items of the filtered probe (``lists["attributes"]``) after it, the
    items with every value the query names (``context["attributes"]``) first, unisex ones
    next where it names a gender, then the rest, each group in its order; as it is when the
    query names none."""
    named = prepared.context.get(ATTRIBUTES_LIST) or {}
    if not named:
        return cand
    more = retrieved.lists.get(ATTRIBUTES_LIST)
    if more is not None and len(more):
        cand = concat(cand, more.exclude(cand.items))
    return cand.take(np.argsort(match_tiers(cand.items, named, env), kind="stable"))


def _boosted(cand: Candidates, prepared: Prepared, env: SurfaceEnv) -> Candidates:
    """``retrieval x (1 + attribute_boost x matches)`` of an unranked list."""
    ranked = bool({"ltr", "utility"} & set(cand.scores))
    if len(cand) == 0 or env.config.attribute_boost == 0 or ranked:
        return cand
    lower = _lowered(env)
    parsed = prepared.context["parsed"]
    matches = np.zeros(len(cand))
    for field_name, attr in BOOSTED:
        wanted = {v.lower() for v in getattr(parsed, field_name)}
        if wanted:
            matches += np.isin(lower[attr][cand.items], list(wanted))
    return boost_matches(cand, matches, env.config.attribute_boost)
