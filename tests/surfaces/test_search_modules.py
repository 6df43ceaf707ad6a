"""Exploratory search: a broad query's page starts with rows of sub-searches, each within one
of the categories the query may be after; a narrow query keeps its grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy

from moodboard.blend.modules import MODULE, PROPENSITY
from moodboard.data import Candidates, Request
from moodboard.serve.registry import Engine
from moodboard.surfaces.modules import with_modules
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
