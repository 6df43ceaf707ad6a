"""Refinement chips and related searches: chip ranking on hand-made results, walks on a tiny
query graph, the catalog-phrase fallback, and the whole thing on the mini engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from moodboard.config import RefinementsConfig
from moodboard.data import Catalog
from moodboard.serve.registry import Engine
from moodboard.surfaces import SurfaceEnv
from moodboard.surfaces.query_graph import QueryGraph, query_key
from moodboard.surfaces.refinements import chips_of, co_terms, rank_chips, refinements
from moodboard.surfaces.related_searches import RelatedSearch, related_of, walked
from moodboard.understand.query import parse_query

CFG = RefinementsConfig(min_support=2)


def _catalog(rows: list[dict[str, str]], prices: list[float] | None = None) -> Catalog:
    """A catalog of hand-made shirts: title and attributes per row."""
    n = len(rows)
    attrs = [json.dumps({k: v for k, v in r.items() if k != "title"}) for r in rows]
    t = pa.table(
        {
            "id": [f"p{i}" for i in range(n)],
            "title": [r["title"] for r in rows],
            "price": pa.array(prices or [None] * n, pa.float64()),
            "attributes": attrs,
        }
    )
    return Catalog.from_table(t)


SHIRTS = _catalog(
    [
        {"title": f"{c} shirt {i}", "baseColour": c, "gender": g, "articleType": "Shirts",
         "usage": "Casual", "subCategory": "Topwear"}
        for i, (c, g) in enumerate(
            [("Red", "Men")] * 5 + [("Blue", "Men")] * 4 + [("Blue", "Women")] * 1
        )
    ]
    + [{"title": "blue tshirt", "baseColour": "Blue", "gender": "Men", "articleType": "Tshirts",
        "usage": "Sports", "subCategory": "Topwear"}]
)  # fmt: skip


def test_a_facet_that_splits_the_results_ranks_above_one_that_does_not() -> None:
    splits = {
        "colour": np.array(["Red"] * 5 + ["Blue"] * 5, dtype=object),
        "gender": np.array(["Men"] * 9 + ["Women"], dtype=object),
        "usage": np.array(["Casual"] * 10, dtype=object),  # every result: narrows nothing
    }
    chips = rank_chips(splits, np.ones(10), CFG)
    facets = [(f, v) for f, v, _, _ in chips]
    assert facets[:2] in (
        [("colour", "Blue"), ("colour", "Red")],
        [("colour", "Red"), ("colour", "Blue")],
    )
    assert ("usage", "Casual") not in facets  # one value for all results
    assert ("gender", "Women") not in facets  # below min_support
    assert facets.index(("gender", "Men")) > 1  # 9 of 10: it barely narrows


def test_engaged_results_weigh_more_in_a_chip_score() -> None:
    splits = {"colour": np.array(["Red"] * 5 + ["Blue"] * 5, dtype=object)}
    mass = np.array([1.0] * 5 + [3.0] * 5)
    assert rank_chips(splits, mass, CFG)[0][1] == "Blue"


def test_chips_skip_the_facets_the_query_names_and_refine_its_text() -> None:
    env = SurfaceEnv(SHIRTS, {}, None)
    items = np.arange(len(SHIRTS))
    chips = chips_of(env, items, parse_query("red shirts"), [], CFG)
    assert chips and all(c.facet != "baseColour" for c in chips)
    men = next(c for c in chips if c.facet == "gender")
    assert (men.query, men.filter, men.support) == ("men red shirts", "gender:Men", 10)
    blue = chips_of(env, items, parse_query("shirts"), [], CFG)
    by = {c.filter: c for c in blue}
    assert by["baseColour:Blue"].query == "blue shirts"
    assert parse_query(by["baseColour:Blue"].query).colours == ("blue",)
    # "casual shirts" names the usage Casual by its own word: no Casual chip
    assert all(
        c.value != "Casual" for c in chips_of(env, items, parse_query("casual shirts"), [], CFG)
    )


def test_price_bands_are_chips_whose_query_the_parser_reads_as_bounds() -> None:
    rows = [{"title": f"shirt {i}", "articleType": "Shirts"} for i in range(12)]
    env = SurfaceEnv(_catalog(rows, [10.0 + 10 * i for i in range(12)]), {}, None)
    cfg = RefinementsConfig(min_support=2, price_bands=3)
    chips = [
        c
        for c in chips_of(env, np.arange(12), parse_query("shirts"), [], cfg)
        if c.facet == "price"
    ]
    assert len(chips) == 3 and all(c.support == 4 and c.filter is None for c in chips)
    bounds = {(parse_query(c.query).price_min, parse_query(c.query).price_max) for c in chips}
    assert bounds == {(None, 47.0), (47.0, 83.0), (83.0, None)}  # thirds, rounded
    named = chips_of(env, np.arange(12), parse_query("shirts under $60"), [], cfg)
    assert all(c.facet != "price" for c in named)  # the query has a price bound already


def _graph() -> QueryGraph:
    # "red dress" and "party dress" led to the same items; "cordless drill" to others.
    queries = [
        "red dress",
        "red dress",
        "party dress",
        "party dress",
        "cordless drill",
        "Red  Dress",
    ]
    items = np.array([0, 1, 0, 1, 5, 1])
    return QueryGraph.from_edges(queries, items, np.array([1.0, 2, 1, 1, 3, 1]), n_items=6)


def test_a_query_co_engaged_with_another_is_its_top_related_search() -> None:
    g = _graph()
    assert sorted(g.queries) == ["cordless drill", "party dress", "red dress"]
    cfg = RefinementsConfig(walkers=200, walk_steps=4)
    got = walked(g, "Red dress", cfg)
    assert [r.query for r in got] == ["party dress"]  # not itself, never the drill
    assert got == walked(g, "red dress", cfg)  # deterministic
    # a query the log lacks starts from the queries sharing its words
    assert {r.query for r in walked(g, "dresses", cfg)} == {"red dress", "party dress"}
    assert walked(g, "lamp", cfg) == []
    assert query_key("red dresses") == query_key("dress red")


def test_the_query_graph_round_trips(tmp_path: Path) -> None:
    g = _graph()
    g.save(tmp_path / "g")
    back = QueryGraph.load(tmp_path / "g")
    assert back.queries == g.queries and np.array_equal(back.weights, g.weights)
    red = g.queries.index("red dress")
    assert g.counts[red] == 3  # searched three times (one spelled otherwise)


def test_catalog_phrases_fill_related_searches_without_history() -> None:
    env = SurfaceEnv(SHIRTS, {}, None, resources={})
    items = np.arange(len(SHIRTS))
    got = related_of(env, items, parse_query("shirt"), "shirt", RefinementsConfig())
    queries = [r.query for r in got]
    assert queries[:2] == ["red shirts", "blue shirts"]  # the commonest colours first
    assert "tshirts" in queries  # another article type of the same sub-category
    assert all(r.source == "catalog" for r in got)


def test_refinements_on_the_mini_engine(engine: Engine) -> None:
    got = refinements(engine.search, "shirts", "nobody-knows-me")
    assert 3 <= len(got.chips) <= engine.search.config.refinements.max_chips
    assert got.related_searches
    scores = [c.score for c in got.chips]
    assert scores == sorted(scores, reverse=True)
    for chip in got.chips:
        assert "shirts" in chip.query and chip.support >= 3
    assert all(query_key(r.query) != query_key("shirts") for r in got.related_searches)
    assert refinements(engine.search, " \x00\x07 ").chips == ()


def test_co_engaged_terms_leave_out_the_query_words_in_any_number() -> None:
    related = [
        RelatedSearch("black women dresses", 0.5, "graph"),
        RelatedSearch("maxi dress", 0.3, "graph"),
        RelatedSearch("party wear", 0.9, "catalog"),  # a catalog phrase: not co-engaged
    ]
    assert co_terms(related, "dress", 5) == ["black", "women", "maxi"]
