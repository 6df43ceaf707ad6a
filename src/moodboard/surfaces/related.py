"""The related surface's steps: ``prepare/related`` and ``blend/complements``.

Related products of one item (the product page): content neighbours and complements.

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
from typing import Any

import numpy as np

from moodboard.blend import boost_matches, dedup_images, interleave, slots
from moodboard.data import Candidates, Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, SurfaceEnv
from moodboard.surfaces.steps import register_blend, register_prepare

_log = logging.getLogger(__name__)

#: The score column holding the lift of a complementary item's category (NaN for the others).
COMPLEMENT = "complement"


def neighbour_probes(env: SurfaceEnv, items: np.ndarray, exclude: np.ndarray) -> dict[str, Probe]:
    """How to ask each configured source for the neighbours of ``items``: the vector sources
    (``item_vectors()``) with the first item's vector (skipped when it has none, e.g. no
    image), then the other loaded sources (``graph/walks``, ``user_interests``) with the
    items themselves."""
    vector_probes, others = {}, {}
    for name in env.config.sources:
        vectors = env.item_vectors(name)
        if vectors is None:
            if name in env.sources:
                others[name] = Probe(SourceQuery(items=items, exclude=exclude))
        elif np.any(vectors[items[0]]):
            query = SourceQuery(vector=vectors[items[0]], items=items, exclude=exclude)
            vector_probes[name] = Probe(query)
    return vector_probes | others


def _categories(env: SurfaceEnv) -> tuple[dict[str, int], np.ndarray]:
    """Category name -> code, and each item's code."""
    names, codes = np.unique(
        np.asarray([c or "" for c in env.catalog.category], dtype=str), return_inverse=True
    )
    return {str(c): j for j, c in enumerate(names) if c}, codes.ravel()


@register_prepare("prepare/related")
def prepare_related(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """The item's neighbours, and, when the page has complement slots, its neighbours in its
    complementary categories (``complements`` resource) as the ``complement`` list.

    Raises
    ------
    NotFoundError
        If the catalog does not have ``request.item_id``.
    """
    cfg = env.config
    item = env.item_index(request.item_id)
    skip = np.unique(np.concatenate([[item], env.indices(request.exclude)])).astype(np.int64)
    seed = np.array([item])
    lists: dict[str, dict[str, Probe]] = {}
    lift: dict[str, float] = {}
    at = slots(need, cfg.complement_share)
    complements = env.resources.get("complements")
    if len(at) and complements is not None:
        comps = complements.of(env.catalog.category[item], cfg.complement_categories)
        lift = {c.category: c.lift for c in comps}
        code, codes = env.memo("related/categories", lambda: _categories(env))
        allowed = np.isin(codes, [code[c] for c in lift if c in code])
        allowed[skip] = False
        if allowed.any():
            lists["complement"] = neighbour_probes(env, seed, np.flatnonzero(~allowed))
    context: dict[str, Any] = {"item": item, "lift": lift, "slots": at}
    return Prepared(
        neighbour_probes(env, seed, skip),
        max(cfg.per_source, need),
        lists=lists,
        exclude=skip,
        rank=rank_query(request, env.resources, context=context),
        context=context,
    )


@register_blend("blend/complements")
def blend_complements(
    retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv
) -> Candidates:
    """Items of the item's own category boosted (``same_category_boost``), complementary
    items (``complement``: their category's lift) at evenly spaced slots, near-identical
    images dropped (also against the item itself)."""
    cfg = env.config
    item, at = prepared.context["item"], prepared.context["slots"]
    main = retrieved.main
    category = env.catalog.category[item]
    if len(main) and category:
        same = env.catalog.category[main.items] == category
        main = boost_matches(main, same, cfg.same_category_boost)
    comp = retrieved.lists.get("complement", Candidates.empty())
    if len(comp):
        lift = prepared.context["lift"]
        cats = env.catalog.category[comp.items]
        comp = comp.with_score(COMPLEMENT, np.array([lift[c] for c in cats], dtype=np.float64))
    dedup = env.item_vectors(cfg.dedup_source)
    comp = dedup_images(comp, dedup, cfg.dedup_threshold, np.array([item]), len(at))
    anchors = np.concatenate([[item], comp.items]).astype(np.int64)
    main = dedup_images(main.exclude(comp.items), dedup, cfg.dedup_threshold, anchors, need)
    return interleave(main, comp, need, at)
