"""Candidate sources on a small hand-checkable catalog: relevance, filters, provenance."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from moodboard.data import Catalog, ItemFilter
from moodboard.errors import ConfigError
from moodboard.retrieve import (
    BM25Source,
    DenseConfig,
    DenseSource,
    FuseConfig,
    Fuser,
    PopularSource,
    SourceQuery,
    TrainingData,
)

ROWS = [
    ("a", "Red running shoes", "Men", "Red", "Footwear/Shoes/Sports Shoes", 40.0),
    ("b", "Navy blue formal shirt", "Men", "Navy Blue", "Apparel/Topwear/Shirts", 25.0),
    ("c", "Navy blue summer dress", "Women", "Navy Blue", "Apparel/Dress/Dresses", 55.0),
    ("d", "White casual shirt", "Women", "White", "Apparel/Topwear/Shirts", 15.0),
    ("e", "Black leather belt", "Men", "Black", "Accessories/Belts/Belts", None),
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.from_table(
        pa.table(
            {
                "id": [r[0] for r in ROWS],
                "title": [r[1] for r in ROWS],
                "category": [r[4] for r in ROWS],
                "price": pa.array([r[5] for r in ROWS], pa.float64()),
                "attributes": [
                    json.dumps(
                        {"gender": r[2], "baseColour": r[3], "articleType": r[4].rsplit("/", 1)[-1]}
                    )
                    for r in ROWS
                ],
            }
        )
    )


def _ids(catalog: Catalog, cand) -> list[str]:
    return catalog.ids.external(cand.items)


def test_bm25_ranks_matches_and_stems(catalog: Catalog) -> None:
    s = BM25Source().fit(TrainingData(catalog=catalog))
    assert _ids(catalog, s(SourceQuery(text="shirts"), 10))[:2] in (["b", "d"], ["d", "b"])
    assert _ids(catalog, s(SourceQuery(text="navy shirt"), 10))[0] == "b"
    assert _ids(catalog, s(SourceQuery(text="runing shoes"), 1)) == ["a"]  # fuzzy + stem
    # a query that asks without fuzzy terms (a broad query's rows) matches the words only
    assert _ids(catalog, s(SourceQuery(text="leathr", fuzzy=False), 10)) == []
    assert _ids(catalog, s(SourceQuery(text="leathr"), 10)) == ["e"]
    assert len(s(SourceQuery(text="!!!"), 10)) == 0


def test_bm25_filters_apply_inside_retrieval(catalog: Catalog) -> None:
    s = BM25Source().fit(TrainingData(catalog=catalog))
    q = SourceQuery(text="shirt dress", item_filter=ItemFilter(price_max=30))
    assert set(_ids(catalog, s(q, 10))) == {"b", "d"}
    q = SourceQuery(text="navy", item_filter=ItemFilter(attributes={"gender": ("women",)}))
    assert _ids(catalog, s(q, 10)) == ["c"]
    q = SourceQuery(text="navy", item_filter=ItemFilter(attributes={"category": ("Topwear",)}))
    assert _ids(catalog, s(q, 10)) == ["b"]
    # the filter is applied before the cut to k: k=1 still finds the only match
    q = SourceQuery(text="shirt dress belt", item_filter=ItemFilter(price_min=50))
    assert _ids(catalog, s(q, 1)) == ["c"]
    assert "b" not in _ids(catalog, s(SourceQuery(text="shirt", exclude=np.array([1])), 10))


@pytest.mark.parametrize("exact_below", [1_000, 2])
def test_dense_exact_and_hnsw_agree_and_filter(catalog: Catalog, exact_below: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(len(catalog), 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    data = TrainingData(catalog=catalog, item_features={"text": x})
    s = DenseSource(DenseConfig(exact_below=exact_below)).fit(data)
    best = np.argsort(-(x @ x[2]))
    assert s(SourceQuery(vector=x[2]), 5).items.tolist() == best.tolist()
    f = ItemFilter(attributes={"gender": ("men",)})
    got = s(SourceQuery(vector=x[2], item_filter=f), 5).items.tolist()
    assert got == [i for i in best.tolist() if ROWS[i][2] == "Men"]
    with pytest.raises(ConfigError, match="8-d"):
        s(SourceQuery(vector=np.ones(3, np.float32)), 5)


def test_popular_respects_filters_and_order(catalog: Catalog) -> None:
    scores = np.array([5.0, 1.0, 9.0, 3.0, 7.0])
    s = PopularSource().fit(TrainingData(catalog=catalog, item_features={"popularity": scores}))
    assert _ids(catalog, s(SourceQuery(), 3)) == ["c", "e", "a"]
    f = ItemFilter(attributes={"gender": ("men",)})
    assert _ids(catalog, s(SourceQuery(item_filter=f), 5)) == ["e", "a", "b"]


def test_weighted_rrf_keeps_provenance(catalog: Catalog) -> None:
    from moodboard.data import Candidates

    lex = Candidates.from_scores([1, 3, 0], np.array([3.0, 2.0, 1.0]), "lexical/bm25")
    den = Candidates.from_scores([2, 1], np.array([0.9, 0.8]), "dense/text")
    fused = Fuser(FuseConfig(k=60, weights={"dense/text": 0.5}))(
        {"lexical/bm25": lex, "dense/text": den}
    )
    assert fused.items[0] == 1  # first in one list, second in the other
    by_item = dict(zip(fused.items.tolist(), fused.sources.tolist(), strict=True))
    assert by_item[1] == "lexical/bm25+dense/text" and by_item[2] == "dense/text"
    expected = 1 / 61 + 0.5 / 62
    assert fused.score("retrieval")[0] == pytest.approx(expected)
    assert np.isnan(fused.score("dense/text")[list(fused.items).index(3)])
    dense_only = Fuser(FuseConfig(weights={"lexical/bm25": 0.0}))(
        {"lexical/bm25": lex, "dense/text": den}
    )
    assert dense_only.items[:2].tolist() == [2, 1]


@pytest.mark.parametrize("n_queries", [2, 9])  # a search's few (FAISS), a batch's (torch)
@pytest.mark.parametrize("filtered", [False, True])
def test_exact_dense_search_returns_what_faiss_flat_returns(filtered: bool, n_queries: int) -> None:
    import faiss

    rng = np.random.default_rng(0)
    items = rng.standard_normal((3_000, 32)).astype(np.float32)
    queries = rng.standard_normal((n_queries, 32)).astype(np.float32)
    allowed = rng.random(3_000) < 0.01 if filtered else None  # ~30 pass: -1 past them
    src = DenseSource().fit(TrainingData(n_items=3_000, item_features={"text": items}))
    scores, idx = src.search(queries, 50, allowed)
    flat = faiss.IndexFlatIP(32)
    flat.add(items)
    params = faiss.SearchParameters()
    if allowed is not None:
        bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
        params.sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
    ref_scores, ref_idx = flat.search(queries, 50, params=params)
    np.testing.assert_array_equal(idx, ref_idx)
    found = ref_idx >= 0
    np.testing.assert_allclose(scores[found], ref_scores[found], rtol=1e-4, atol=1e-4)
    assert (idx == -1).any() == filtered


@pytest.mark.parametrize("exact_below", [1_000, 2])
def test_a_batch_of_queries_each_with_its_filter_gets_what_each_would_alone(
    catalog: Catalog, exact_below: int
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(len(catalog), 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    data = TrainingData(catalog=catalog, item_features={"text": x})
    s = DenseSource(DenseConfig(exact_below=exact_below)).fit(data)
    queries = [
        SourceQuery(vector=x[0]),
        SourceQuery(vector=x[1], item_filter=ItemFilter(attributes={"gender": ("women",)})),
        SourceQuery(text="no vector"),
        SourceQuery(vector=x[3], exclude=np.array([3, 4])),
        SourceQuery(vector=x[4], item_filter=ItemFilter(price_min=20.0)),
    ]
    got = s.batch(queries, 4)
    alone = [s(q, 4) for q in queries]
    assert [c.items.tolist() for c in got] == [c.items.tolist() for c in alone]
    for g, a in zip(got, alone, strict=True):
        if len(a):
            np.testing.assert_allclose(g.score("retrieval"), a.score("retrieval"), rtol=1e-5)
    assert set(_ids(catalog, got[1])) <= {"c", "d"} and len(got[2]) == 0
    assert not {"d", "e"} & set(_ids(catalog, got[3]))
    assert len(BM25Source().fit(data).batch([queries[0], SourceQuery(text="shirt")], 3)[1]) == 2
