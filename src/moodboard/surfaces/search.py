"""The search surface's own steps: ``prepare/search`` (understand the query, embed it) and
``blend/boost`` (attribute boosts).

Price phrases become hard filters applied inside every source; colours, genders and article
types the query names become boosts on the fused score, so "navy shirt" prefers navy shirts
without hiding good matches whose attributes are missing. The chain: ``prepare/search ->
lexical/bm25 + dense/text -> fuse/rrf -> rank/lambdamart -> blend/boost -> fallback/popular``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from moodboard.blend import boost_matches
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
BOOSTED = (("colours", "baseColour"), ("genders", "gender"), ("article_types", "articleType"))


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
    context: dict[str, Any] = {"parsed": parsed, "text": query_text, "vector": vector}
    context |= _interests(request, env)
    modules, lists, ms = explore_modules(parsed, query_text, request, env, q)
    if modules:
        key = request.session if request.session is not None else request.request_id
        context |= {"modules": modules, "module_key": key, "user": request.user_id}
        timings["encode_modules"] = ms
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
        list_depth=cfg.modules.depth,
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


@register_blend("blend/boost")
def blend_boost(retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv) -> Candidates:
    """``retrieval x (1 + attribute_boost x matches)`` for the colours, genders and article
    types the query names and the item has; a broad query's page starts with the rows of its
    sub-searches (``search_modules.compose_explore``).

    A list a ranker has ordered (an ``ltr`` or ``utility`` score) is kept as it is: the learned
    ranker sees the same matches as its ``attr_match`` feature, and re-sorting by the boosted
    retrieval score would undo its order.
    """
    return compose_explore(_boosted(retrieved, prepared, env), retrieved, prepared, env)


def _boosted(retrieved: Retrieved, prepared: Prepared, env: SurfaceEnv) -> Candidates:
    cand = retrieved.main
    ranked = bool({"ltr", "utility"} & set(cand.scores))
    if len(cand) == 0 or env.config.attribute_boost == 0 or ranked:
        return cand
    lower = env.memo(
        "boost/lower",
        lambda: {
            a: np.array([(v or "").lower() for v in env.catalog.attribute(a)], dtype=object)
            for _, a in BOOSTED
        },
    )
    parsed = prepared.context["parsed"]
    matches = np.zeros(len(cand))
    for field_name, attr in BOOSTED:
        wanted = {v.lower() for v in getattr(parsed, field_name)}
        if wanted:
            matches += np.isin(lower[attr][cand.items], list(wanted))
    return boost_matches(cand, matches, env.config.attribute_boost)
