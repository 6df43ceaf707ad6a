"""The home page's modules: the feed's candidate rows and the ``blend/modules`` step.

With ``surfaces.feed.modules.enabled`` (or ``with_modules``), ``prepare/feed`` names the
user's candidate modules (``candidate_modules``) and asks their candidates as further lists:

- ``board``: "More like your board X": the neighbours of a board's items (``sources``), for
  each of the user's newest boards that has items (the ``boards`` resource);
- ``viewed``: "Because you viewed Y": the neighbours of the user's last engaged item;
- ``trending``: "Trending in <category>": ``popular/trending`` within the category the user
  engaged with most (the leaf of its path, weighted by action);
- ``new``: "New arrivals": the newest products by ``created_at`` (a catalog without dates:
  the rows it added last), made by the prepare step itself.

The chain ranks them with the feed's own list in one call of its rank stage; ``blend/modules``
then lets the policy (``blend.modules.order_modules``, seeded by (seed, user, request key))
pick and order the modules that have ``per_module`` candidates, and lays the page out
(``blend.modules.compose``): the rows, then the feed's grid (``blend/explore``) without them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from moodboard.blend import request_rng
from moodboard.blend.modules import (
    AMONG,
    EXPLORED,
    LAYOUT_COLUMNS,
    MODULE,
    PROPENSITY,
    ROW,
    Layout,
    compose,
    mask_members,
    order_modules,
)
from moodboard.data import Candidates, ItemFilter, Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, Surface, SurfaceEnv

_log = logging.getLogger(__name__)

__all__ = [
    "AMONG",
    "EXPLORED",
    "LAYOUT_COLUMNS",
    "MODULE",
    "PROPENSITY",
    "ROW",
    "Module",
    "candidate_modules",
    "compose_modules",
    "mask_members",
    "with_modules",
]

#: The provenance of the ``new`` module's items.
NEW_ARRIVALS = "modules/new"


@dataclass(frozen=True)
class Module:
    """One candidate row: its id (``kind:<what>``), kind, title and its policy score; a
    sub-search row also names the ``query`` that shows all of it."""

    id: str
    kind: str
    title: str
    score: float
    query: str | None = None


def category_leaf(category: object) -> str:
    """The last level of a category path ("Apparel/Topwear/Shirts" -> "Shirts"; "" if none)."""
    return str(category or "").rsplit("/", 1)[-1]


def _neighbours(env: SurfaceEnv, seeds: np.ndarray, query: SourceQuery) -> dict[str, Probe]:
    """How to ask each of the modules' ``sources`` for the neighbours of ``seeds``: a vector
    source with the seeds' vectors (merged by round robin), the others with the seeds."""
    probes = {}
    for name in env.config.modules.sources:
        if name not in env.sources:
            continue
        vectors = env.item_vectors(name)
        if vectors is None:
            probes[name] = Probe(query)
            continue
        v = vectors[seeds[-8:]]
        v = v[np.any(v != 0, axis=1)]
        if len(v):
            probes[name] = Probe(query, vectors=v, weights=np.ones(len(v)))
    return probes


def _newest(env: SurfaceEnv, allowed: np.ndarray, n: int) -> Candidates:
    """The ``n`` newest allowed items, newest first (by ``created_at``, then catalog row)."""
    order = env.memo("modules/newest", lambda: _by_age(env))
    items = order[allowed[order]][:n]
    return Candidates.from_scores(items, 1.0 / (1.0 + np.arange(len(items))), NEW_ARRIVALS)


def _by_age(env: SurfaceEnv) -> np.ndarray:
    created = env.catalog.created_at
    rows = np.arange(len(env.catalog))
    if created is None:
        return rows[::-1].copy()
    c = np.asarray(created, dtype="datetime64[us]")
    t = np.where(np.isnat(c), np.iinfo(np.int64).min + 1, c.astype(np.int64))  # NaT: oldest
    return np.lexsort((-rows, -t))


def _favourite(env: SurfaceEnv, hist: np.ndarray, w: np.ndarray | None) -> str | None:
    """The category leaf the history weighs most (the latest on ties), or None."""
    weights = Counter[str]()
    for j, i in enumerate(hist[-50:].tolist()):
        leaf = category_leaf(env.catalog.category[i])
        if leaf:
            weights[leaf] += 1.0 if w is None else float(w[-50:][j])
    if not weights:
        return None
    return max(weights, key=lambda c: weights[c])


def within_category(f: ItemFilter | None, category: str) -> ItemFilter:
    """``f`` (or no filter) narrowed to the items of ``category``."""
    attrs = dict(f.attributes) if f is not None else {}
    attrs["category"] = (category,)
    base = f if f is not None else ItemFilter()
    return base.model_copy(update={"attributes": attrs})


def candidate_modules(
    request: Request,
    env: SurfaceEnv,
    hist: np.ndarray,
    w: np.ndarray | None,
    query: SourceQuery,
) -> tuple[tuple[Module, ...], dict[str, dict[str, Probe]], dict[str, Candidates]]:
    """The user's candidate modules, the probes of those a source answers, and the lists the
    prepare step makes itself (``new``), keyed by module id.

    ``query`` carries the request's filter and exclusions (and the engaged items)."""
    cfg = env.config.modules
    weight = cfg.weights
    skip = np.asarray(query.exclude if query.exclude is not None else [], dtype=np.int64)
    f = query.item_filter
    mods: list[Module] = []
    lists: dict[str, dict[str, Probe]] = {}
    boards = env.resources.get("boards")
    if boards is not None and request.user_id and cfg.max_boards and "board" in weight:
        for b in boards(request.user_id, cfg.max_boards):
            seeds = env.indices(list(b.item_ids))
            near = SourceQuery(items=seeds, item_filter=f, exclude=np.union1d(skip, seeds))
            probes = _neighbours(env, seeds, near)
            if len(seeds) and probes:
                mods.append(
                    Module(
                        f"board:{b.id}",
                        "board",
                        f"More like your board “{b.title or b.id}”",
                        weight["board"],
                    )
                )
                lists[mods[-1].id] = probes
    if len(hist) and "viewed" in weight:
        last = hist[-1:]
        probes = _neighbours(env, last, SourceQuery(items=last, item_filter=f, exclude=skip))
        if probes:
            item_id = env.catalog.ids.external(last.tolist())[0]
            title = env.catalog.title[int(last[0])] or item_id
            mods.append(
                Module(
                    f"viewed:{item_id}", "viewed", f"Because you viewed {title}", weight["viewed"]
                )
            )
            lists[mods[-1].id] = probes
    if f is not None and len(hist):  # the favourite among the items the request allows
        ok = f.mask(env.catalog)[hist]
        hist, w = hist[ok], None if w is None else np.asarray(w)[ok]
    favourite = _favourite(env, hist, w) if len(hist) else None
    if favourite and "trending" in weight and "popular/trending" in env.sources:
        probe = Probe(SourceQuery(item_filter=within_category(f, favourite), exclude=skip))
        mods.append(
            Module(
                f"trending:{favourite}", "trending", f"Trending in {favourite}", weight["trending"]
            )
        )
        lists[mods[-1].id] = {"popular/trending": probe}
    given: dict[str, Candidates] = {}
    if "new" in weight:
        allowed = np.ones(len(env.catalog), dtype=bool)
        if f is not None:
            allowed &= f.mask(env.catalog)
        allowed[skip] = False
        mods.append(Module("new", "new", "New arrivals", weight["new"]))
        given["new"] = _newest(env, allowed, cfg.depth)
    return tuple(mods), lists, given


def draw_rows(
    specs: tuple[Module, ...], lists: list[Candidates], env: SurfaceEnv, ctx: Mapping[str, Any]
) -> Layout:
    """The policy's rows among the modules with enough candidates, as indices of ``specs``."""
    cfg = env.config.modules
    able = [j for j, c in enumerate(lists) if len(c) >= cfg.per_module]
    scores = np.array([specs[j].score for j in able], dtype=np.float64)
    rng = request_rng(env.seed, ctx["user"], "modules:" + str(ctx["module_key"]))
    layout = order_modules(scores, cfg.max_modules, cfg.epsilon, rng)
    order = tuple(able[m] for m in layout.order)
    return Layout(order, layout.propensities, layout.explored, tuple(able))


def compose_modules(
    grid: Candidates, retrieved: Retrieved, prepared: Prepared, env: SurfaceEnv
) -> Candidates:
    """The policy's rows of the prepared candidate modules, then ``grid`` without them (with
    the ``LAYOUT_COLUMNS`` even when no module has enough candidates)."""
    specs: tuple[Module, ...] = tuple(prepared.context.get("modules", ()))
    lists = [retrieved.lists.get(m.id, Candidates.empty()) for m in specs]
    layout = draw_rows(specs, lists, env, prepared.context) if specs else Layout((), (), False)
    page, _ = compose(lists, layout, env.config.modules.per_module, grid)
    return page


def with_modules(surface: Surface, on: bool) -> Surface:
    """A chain with its modules (the feed's rows, a broad search's rows) on or off (the same
    chain when it already is)."""
    cfg = surface.config
    if cfg.modules.enabled == on:
        return surface

    def make() -> Surface:
        new = cfg.model_copy(update={"modules": cfg.modules.model_copy(update={"enabled": on})})
        env = replace(surface.env, config=new, _memo={})
        parts = (surface.prepare, surface.sources, surface.fuse, surface.rank, surface.blend)
        return Surface(surface.name, *parts, surface.fallback, env)

    return surface.env.memo(f"modules/{on}", make)
