"""Exploratory search: a broad query's page starts with rows of sub-searches, each within one
of the categories the query may be after; a narrow query keeps its grid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import entropy

from moodboard.blend.modules import MODULE, PROPENSITY
from moodboard.data import Candidates, Request
from moodboard.serve.registry import Engine
from moodboard.surfaces.modules import with_modules
from moodboard.surfaces.runner import Surface
from moodboard.surfaces.search_modules import SUB_SEARCH, is_spread, perplexity

BROAD = "summer outfit"


def _run(surface, query: str, k: int = 24, rid: str = "r1"):
    return surface.run(Request(surface="search", query=query, k=k, request_id=rid))


def test_perplexity_is_exp_entropy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = rng.dirichlet(np.ones(12))
        assert perplexity(p) == pytest.approx(np.exp(entropy(p)))
    assert perplexity(np.array([1.0, 0, 0])) == pytest.approx(1.0)
    assert perplexity(np.full(8, 1 / 8)) == pytest.approx(8.0)


def test_a_broad_query_starts_with_rows_of_sub_searches_each_in_its_category(
    engine: Engine,
) -> None:
    res = _run(engine.search, BROAD)
    specs = res.prepared.context["modules"]
    assert len(specs) >= 2 and all(m.kind == SUB_SEARCH for m in specs)
    cand = res.candidates
    module = cand.score(MODULE)
    rows = [int(m) for m in dict.fromkeys(module[~np.isnan(module)].tolist())]
    assert len(rows) >= 2
    per = engine.search.config.modules.per_module
    # rows come first, each per_module long, then the grid
    assert np.all(~np.isnan(module[: per * len(rows)]))
    for j, m in enumerate(rows):
        spec = specs[m]
        members = cand.items[module == m]
        assert len(members) == per
        leaves = {engine.catalog.category[int(i)].rsplit("/", 1)[-1] for i in members}
        assert leaves == {spec.title}, f"row {spec.title} holds {leaves}"
        assert spec.query and spec.title.lower() in spec.query
        assert np.all(module[j * per : (j + 1) * per] == m)
    assert np.all(cand.score(PROPENSITY)[: per * len(rows)] > 0)
    # the rows' lexical sub-searches skip fuzzy terms (the query was spell-corrected), the
    # query's own list keeps them
    assert res.prepared.probes["lexical/bm25"].query.fuzzy
    assert not any(res.prepared.lists[m.id]["lexical/bm25"].query.fuzzy for m in specs)
    # no item twice on the page
    assert len(np.unique(cand.items)) == len(cand.items)


def test_a_narrow_query_keeps_its_grid(engine: Engine) -> None:
    for q in ("red dress", "navy blue shirt for men", "black watch"):
        res = _run(engine.search, q)
        assert MODULE not in res.candidates.scores, q
        assert not res.prepared.context.get("modules"), q


def test_modules_off_gives_the_grid_of_the_same_query(engine: Engine) -> None:
    off = with_modules(engine.search, False)
    res = _run(off, BROAD)
    assert MODULE not in res.candidates.scores
    assert len(res.candidates) >= 24


def test_results_in_one_category_are_not_spread(engine: Engine) -> None:
    env = engine.search.env
    leaf = np.array([c.rsplit("/", 1)[-1] for c in engine.catalog.category])
    dresses = np.flatnonzero(leaf == "Dresses")[:30]
    others = np.flatnonzero(leaf != "Dresses")[:30]
    assert not is_spread(Candidates.from_scores(dresses, np.ones(30), "x"), env)
    mixed = np.concatenate([dresses[:10], others[:10], np.flatnonzero(leaf == "Watches")[:10]])
    assert is_spread(Candidates.from_scores(mixed, np.ones(30), "x"), env)


def _with_sub_vectors(surface: Surface, mode: str, calls: list[list[str]]) -> Surface:
    """``surface`` with ``modules.sub_vectors = mode``, its encoder recording what it is asked."""
    cfg = surface.config
    new = cfg.model_copy(update={"modules": cfg.modules.model_copy(update={"sub_vectors": mode})})
    encode = surface.env.resources["encode"]

    def recording(texts):
        calls.append(list(texts))
        return encode(texts)

    env = replace(
        surface.env, config=new, resources={**surface.env.resources, "encode": recording}, _memo={}
    )
    parts = (surface.prepare, surface.sources, surface.fuse, surface.rank, surface.blend)
    return Surface(surface.name, *parts, surface.fallback, env)


def test_broad_rows_compose_their_vectors_without_encoding_each_sub_query(engine: Engine) -> None:
    calls: list[list[str]] = []
    composed = _with_sub_vectors(engine.search, "compose", calls)
    res = _run(composed, BROAD)
    specs = res.prepared.context["modules"]
    assert len(specs) >= 2
    leaves = {m.title.lower() for m in specs}
    assert calls[0] == [BROAD]  # the query, then only category names: no sub-query encoded
    assert set(calls[1]) <= leaves and len(calls) == 2
    calls.clear()
    _run(composed, "winter outfit", rid="r2")
    assert len(calls) <= 2 and calls[0] == ["winter outfit"]  # names kept: few new ones
    exact = _run(_with_sub_vectors(engine.search, "encode", []), BROAD)
    q = res.prepared.context["vector"]
    for m in specs:
        vec = res.prepared.lists[m.id]["dense/text"].query.vector
        own = exact.prepared.lists[m.id]["dense/text"].query.vector
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
        assert float(vec @ own) > 0.75, m.query  # near the sub-query's own encoding
        assert float(vec @ q) > 0.5  # and still about the query
