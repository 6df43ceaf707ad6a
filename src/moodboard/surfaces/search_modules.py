"""Exploratory search: a broad query's page as rows of sub-searches over the grid.

"summer outfit" names no product type: its shoppers want ideas, not one grid. When a query is
broad, ``prepare/search`` adds candidate modules (``explore_modules``), one sub-search per
category the query may be after, and ``blend/boost`` lays the page out as rows of modules,
then the grid (``compose_explore``), in the module page JSON of the feed (``modules``).

How a query is found broad, without an LLM:

1. It names no article type (the lexicon found none) and its intent is spread: the intent
   classifier's distribution over categories has a perplexity (``exp(entropy)``) of at least
   ``min_categories``.
2. Its results are spread: among the first ``spread_depth`` fused results no category holds
   more than ``max_top_share`` of them. Checked in the blend step; a query that fails it keeps
   its grid.

The candidate rows are the intent's most probable categories (``candidates`` of them, each
with at least ``min_probability``) and the top category's complements learned from
co-engagement (``complements`` resource, weighted by ``complement_weight``). Each row is a
sub-search: the query with the category's name ("summer outfit dresses"), within the category,
asked of the search sources (a row's query vector is the query's plus the category name's,
normalized: ``modules.sub_vectors``, so a broad query costs no encoding beyond its own); a
row's expected
engagement is its category's probability times the category's engagement rate in the build's
logs, raised for a known shopper by the category's share of their history
(``personal_weight``). The feed's module policy (``blend.modules.order_modules``,
epsilon-greedy, logged propensities) orders the rows with enough results.

Where it fails: a broad query whose words the classifier never saw in titles or engaged
queries ("something for a wedding") has a flat distribution over unrelated categories; the
rows are then the categories of whatever words it shares with titles.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from moodboard.blend.modules import compose
from moodboard.data import Candidates, ItemFilter, Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.compose import ENGAGEMENT
from moodboard.surfaces.feed import user_history
from moodboard.surfaces.modules import Module, category_leaf, draw_rows, within_category
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, SurfaceEnv
from moodboard.understand.query import ParsedQuery

#: The module kind of a sub-search row.
SUB_SEARCH = "search"
#: The resource giving a query text's full intent distribution (``{category: probability}``).
INTENT = "intent"


def perplexity(p: np.ndarray) -> float:
    """``exp(entropy)`` of a distribution: the effective number of categories."""
    q = np.asarray(p, dtype=np.float64)
    q = q[q > 0] / q.sum() if q.sum() > 0 else q[q > 0]
    return float(np.exp(-(q * np.log(q)).sum())) if len(q) else 0.0


def _engagement_rate(env: SurfaceEnv) -> dict[str, float]:
    """Per category leaf, its items' smoothed engagement rate in the build's logs."""
    engagement = env.resources.get(ENGAGEMENT)
    rates: dict[str, float] = {}
    if engagement is None or not len(engagement):
        return rates
    idx = env.catalog.ids.indices(list(engagement.item_ids), missing=-1)
    imp, eng = engagement.counts["impressions"], engagement.counts["engagements"]
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for j, i in enumerate(idx.tolist()):
        if i >= 0:
            s = sums[category_leaf(env.catalog.category[i])]
            s[0] += float(eng[j])
            s[1] += float(imp[j])
    total = sum(s[0] for s in sums.values()) / max(1.0, sum(s[1] for s in sums.values()))
    for leaf, (e, n) in sums.items():
        rates[leaf] = (e + 20 * total) / (n + 20)  # shrunk to the overall rate
    return rates


def _candidates(
    parsed: ParsedQuery, text: str, request: Request, env: SurfaceEnv
) -> list[tuple[str, float]]:
    """The categories a broad query's rows may search, with their expected engagement."""
    cfg = env.config.modules
    intent = env.resources.get(INTENT)
    if intent is None or parsed.article_types:
        return []
    dist = intent(text)
    if not dist:
        return []
    labels = list(dist)
    p = np.array([dist[x] for x in labels])
    if perplexity(p) < cfg.min_categories:
        return []
    order = np.argsort(-p, kind="stable")[: cfg.candidates]
    prob: dict[str, float] = {}
    for j in order.tolist():
        if p[j] >= cfg.min_probability:
            leaf = category_leaf(labels[j])
            prob[leaf] = prob.get(leaf, 0.0) + float(p[j])
    complements = env.resources.get("complements")
    if complements is not None and len(order) and cfg.complements:
        top = labels[int(order[0])]
        for c in complements.of(top, cfg.complements):
            leaf = category_leaf(c.category)
            prob.setdefault(leaf, cfg.complement_weight * float(p[order[0]]))
    rates = env.memo("explore/rates", lambda: _engagement_rate(env))
    base = float(np.mean(list(rates.values()))) if rates else 1.0
    share = _history_shares(request, env) if cfg.personal_weight else {}
    return [
        (leaf, pr * rates.get(leaf, base) / base * (1 + cfg.personal_weight * share.get(leaf, 0)))
        for leaf, pr in prob.items()
    ]


def _history_shares(request: Request, env: SurfaceEnv) -> dict[str, float]:
    """Per category leaf, its share of the user's (action-weighted) history."""
    if not request.user_id:
        return {}
    hist, w = user_history(request, env)
    if not len(hist):
        return {}
    weights = np.ones(len(hist)) if w is None else np.asarray(w, dtype=np.float64)
    sums: dict[str, float] = defaultdict(float)
    for i, x in zip(hist[-100:].tolist(), weights[-100:].tolist(), strict=True):
        sums[category_leaf(env.catalog.category[i])] += x
    total = sum(sums.values()) or 1.0
    return {leaf: v / total for leaf, v in sums.items()}


def explore_modules(
    parsed: ParsedQuery,
    text: str,
    request: Request,
    env: SurfaceEnv,
    base: SourceQuery,
    named: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[tuple[Module, ...], dict[str, dict[str, Probe]], float]:
    """A broad query's candidate rows and how to ask the search sources for each.

    ``named``: the catalog values the query names (colour, gender, usage: "for girls"), which
    every row keeps as a filter, so a row holds only items that match them all.

    Returns the modules, their probes by module id, and the milliseconds spent encoding the
    sub-queries (one batch); nothing for a narrow query or with ``modules.enabled`` off.
    """
    cfg = env.config.modules
    if not cfg.enabled:
        return (), {}, 0.0
    found = _candidates(parsed, text, request, env)
    if len(found) < 2:
        return (), {}, 0.0
    subs = [text if leaf.lower() in text.split() else f"{text} {leaf.lower()}" for leaf, _ in found]
    vectors: np.ndarray | None = None
    encode = env.resources.get("encode")
    ms = 0.0
    if encode is not None and any(s.startswith("dense/") for s in env.config.sources):
        t0 = time.perf_counter()
        if cfg.sub_vectors == "compose" and base.vector is not None:
            vectors = composed_vectors(base.vector, [leaf for leaf, _ in found], subs, text, env)
        else:
            vectors = np.asarray(encode(subs))
        ms = (time.perf_counter() - t0) * 1e3
    narrowed = base.item_filter
    if named:
        own = narrowed.attributes if narrowed is not None else {}
        narrowed = (narrowed or ItemFilter()).model_copy(
            update={"attributes": {**named, **own}}  # the request's own filter wins
        )
    mods: list[Module] = []
    probes: dict[str, dict[str, Probe]] = {}
    for j, ((leaf, score), sub) in enumerate(zip(found, subs, strict=True)):
        f: ItemFilter = within_category(narrowed, leaf)
        vec = None if vectors is None else vectors[j]
        q = replace(base, text=sub, vector=vec, item_filter=f, fuzzy=cfg.fuzzy_rows)
        mod = Module(f"{SUB_SEARCH}:{leaf}", SUB_SEARCH, leaf, score, query=sub)
        mods.append(mod)
        probes[mod.id] = {
            n: Probe(q)
            for n in env.config.sources
            if (vec is not None or not n.startswith("dense/"))
            and n not in env.config.main_list_only
        }
    return tuple(mods), probes, ms


def composed_vectors(
    query: np.ndarray, leaves: list[str], subs: list[str], text: str, env: SurfaceEnv
) -> np.ndarray:
    """Each row's query vector without encoding it: ``unit(query + name)``, where ``name`` is
    the category name's vector (encoded once per category and kept for the environment); the
    query's own vector where the sub-query is the query itself (it names the category).

    On the demo catalog's broad queries these are at cosine 0.90 to the sub-queries' own
    encodings, and the rows share 0.73 of their first 24 items (``bench/broad_rows.py``).
    """
    kept: dict[str, np.ndarray] = env.memo("explore/leaf_vectors", dict)
    names = [leaf.lower() for leaf in leaves]
    missing = list(dict.fromkeys(n for n in names if n not in kept))
    if missing:
        for name, row in zip(missing, np.asarray(env.resources["encode"](missing)), strict=True):
            kept[name] = row
    q = np.asarray(query, dtype=np.float32)
    out = np.stack([q if sub == text else q + kept[n] for n, sub in zip(names, subs, strict=True)])
    return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def is_spread(cand: Candidates, env: SurfaceEnv) -> bool:
    """Whether a query's first results spread over categories (no category holds more than
    ``max_top_share`` of the first ``spread_depth``)."""
    cfg = env.config.modules
    head = cand.items[: cfg.spread_depth]
    if not len(head):
        return False
    leaves = [category_leaf(env.catalog.category[int(i)]) for i in head]
    _, counts = np.unique(leaves, return_counts=True)
    return bool(counts.max() / len(head) <= cfg.max_top_share)


def compose_explore(
    grid: Candidates, retrieved: Retrieved, prepared: Prepared, env: SurfaceEnv
) -> Candidates:
    """The rows of a broad query's sub-searches (the policy's choice and order), then the grid
    without their items; the grid alone when the query's results are not spread."""
    specs: tuple[Module, ...] = tuple(prepared.context.get("modules", ()))
    if not specs or not is_spread(retrieved.main, env):
        return grid
    lists = [retrieved.lists.get(m.id, Candidates.empty()) for m in specs]
    layout = draw_rows(specs, lists, env, prepared.context)
    if not layout.order:
        return grid
    page, _ = compose(lists, layout, env.config.modules.per_module, grid)
    return page
