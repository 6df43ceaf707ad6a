"""The candidate-source contract as pytest checks, run over every registered source.

What every source must do, whatever it learns: construct with its default config; round-trip
its config through JSON and refuse unknown keys; refuse use before ``fit`` with
``NotFittedError``; refuse a ``k`` that is not an int >= 1 with ``ConfigError``; answer a
``k`` larger than the catalog with at most the catalog, best first, without repeats; keep
filters and exclusions; give equal answers after ``save`` and ``load`` (one open format:
``source.json`` beside the state files); and handle an unknown user and unknown items by its
policy (dropped, never a ``KeyError``). The full-ranking sources also score every item.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.errors import ConfigError, NotFittedError
from moodboard.retrieve.base import SOURCE_FILE, CandidateSource, SourceQuery, TrainingData
from moodboard.retrieve.registry import load_source, source_class

#: Tiny configs that fit in well under a second on the contract data (default: the default).
FAST_CONFIGS: dict[str, dict[str, Any]] = {
    "two_tower": {"dim": 8, "hidden": 16, "epochs": 2, "batch_size": 32, "random_negatives": 4},
    "sequence": {
        "dim": 8,
        "n_heads": 1,
        "epochs": 2,
        "eval_every": 2,
        "negatives": 0,
        "max_len": 8,
        "valid_users": 0,
    },
    "user_interests": {"dim": 4, "n_candidates": 10},
    "als": {"factors": 4, "iterations": 2, "threads": 1},
    "dense/text_image": {"index": None, "epochs": 3, "batch_size": 16},
}

_COLOURS = ("red", "blue", "green", "black", "white")
_KINDS = ("shirt", "dress", "shoes")
N_ITEMS = 30
N_USERS = 40


def contract_data(seed: int = 0) -> TrainingData:
    """A small hand-made world: 30 items (5 colours x 3 kinds, twice, priced 10 .. 300), text
    and image vectors, attribute bags, and 40 shoppers who stay within one kind."""
    rng = np.random.default_rng(seed)
    titles = [f"{_COLOURS[i % 5]} {_KINDS[(i // 5) % 3]}" for i in range(N_ITEMS)]
    table = pa.table(
        {
            "id": [f"p{i}" for i in range(N_ITEMS)],
            "title": titles,
            "category": [f"Apparel/{_KINDS[(i // 5) % 3]}" for i in range(N_ITEMS)],
            "price": pa.array([10.0 * (i + 1) for i in range(N_ITEMS)], pa.float64()),
            "attributes": [json.dumps({"baseColour": _COLOURS[i % 5]}) for i in range(N_ITEMS)],
        }
    )
    catalog = Catalog.from_table(table)
    kind = np.array([(i // 5) % 3 for i in range(N_ITEMS)])
    text = rng.normal(size=(N_ITEMS, 16)) + 3.0 * np.eye(3)[kind] @ rng.normal(size=(3, 16))
    image = rng.normal(size=(N_ITEMS, 12))
    bags = [np.array([i % 5, 5 + kind[i]]) if i % 3 else np.array([i % 5]) for i in range(N_ITEMS)]
    sequences, weights = [], []
    for u in range(N_USERS):
        pool = np.flatnonzero(kind == u % 3)
        seq = rng.choice(pool, size=int(rng.integers(3, 9)))
        sequences.append(seq.astype(np.int64))
        weights.append(rng.choice([1.0, 3.0], size=len(seq)))
    return TrainingData(
        n_items=N_ITEMS,
        sequences=sequences,
        item_features={
            "text": _unit(text),
            "image": _unit(image),
            "attributes": bags,
        },
        weights=weights,
        users=[f"u{u}" for u in range(N_USERS)],
        catalog=catalog,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def contract_query(data: TrainingData, **changes: Any) -> SourceQuery:
    """A query with something for every kind of source: text, a text vector, seed items,
    the first shopper's history with its weights, and the shopper's id."""
    vectors = np.asarray(data.item_features["text"])
    fields: dict[str, Any] = {
        "text": "blue shirt",
        "vector": vectors[1],
        "items": np.array([0, 1]),
        "history": np.asarray(data.sequences[0]),
        "weights": np.asarray(data.weights[0]) if data.weights is not None else None,
        "user": data.users[0] if data.users is not None else None,
    }
    fields.update(changes)
    query = SourceQuery(**fields)
    if query.vector is not None and query.vector.shape[-1] != vectors.shape[1]:
        raise ConfigError("contract_query: the vector must be in the text space.")
    return query


def fast_source(name: str) -> CandidateSource:
    """The source registered under ``name`` with its fast contract config, unfitted."""
    cls = source_class(name)
    return cls(cls.Config(**FAST_CONFIGS.get(name, {})))


def _query_for(source: CandidateSource, data: TrainingData, **changes: Any) -> SourceQuery:
    """The contract query, with a vector in the source's own space (image for visual)."""
    vectors = source.item_vectors()
    if vectors is not None and "vector" not in changes:
        changes["vector"] = vectors[1]
    fields = {**contract_query(data).__dict__, **changes}
    return SourceQuery(**fields)


def _check_candidates(cand: Candidates, n: int, k: int) -> None:
    assert isinstance(cand, Candidates)
    items = cand.items.tolist()
    assert len(items) <= min(k, n), (len(items), k, n)
    assert len(set(items)) == len(items), "a source returned an item twice"
    assert all(0 <= i < n for i in items), items
    if len(cand) > 1:
        s = cand.score("retrieval")
        assert np.all(np.diff(s) <= 1e-6), "candidates must come best first"


class CandidateSourceContract:
    """The contract checks; provide a ``source_name`` fixture (a registry name)."""

    @pytest.fixture(scope="class")
    def data(self) -> TrainingData:
        return contract_data()

    @pytest.fixture(scope="class")
    def fitted(self, source_name: str, data: TrainingData) -> CandidateSource:
        return fast_source(source_name).fit(data)

    def test_default_construction_stores_the_config(self, source_name: str) -> None:
        cls = source_class(source_name)
        source = cls()
        assert source.config == cls.Config() and source.kind == source_name
        assert source.name == source_name and not source.fitted
        named = cls(cls.Config(), name="custom")
        assert named.name == "custom" and named.kind == source_name
        with pytest.raises(ConfigError, match="'config' parameter"):
            cls(object())  # type: ignore[arg-type]

    def test_config_round_trips_through_json_and_refuses_unknown_keys(
        self, source_name: str
    ) -> None:
        cls = source_class(source_name)
        for config in (cls.Config(), fast_source(source_name).config):
            assert cls.Config.model_validate_json(config.model_dump_json()) == config
        with pytest.raises(ValidationError):
            cls.Config(not_a_setting=1)  # type: ignore[call-arg]

    def test_unfitted_use_raises(
        self, source_name: str, data: TrainingData, tmp_path: Path
    ) -> None:
        source = fast_source(source_name)
        with pytest.raises(NotFittedError, match="isn't fitted"):
            source(contract_query(data), 5)
        with pytest.raises(NotFittedError):
            source.save(tmp_path)
        if source.full_ranking:
            with pytest.raises(NotFittedError):
                source.score([np.array([0])])
        else:
            with pytest.raises(ConfigError, match="full_ranking"):
                source.score([np.array([0])])

    @pytest.mark.parametrize("k", [0, -1, 2.5, True, "3", None])
    def test_bad_k_raises(self, fitted: CandidateSource, data: TrainingData, k: object) -> None:
        with pytest.raises(ConfigError, match="'k' parameter"):
            fitted(_query_for(fitted, data), k)  # type: ignore[arg-type]

    def test_k_larger_than_the_catalog_gives_at_most_the_catalog(
        self, fitted: CandidateSource, data: TrainingData
    ) -> None:
        k = 10 * data.n_items
        cand = fitted(_query_for(fitted, data), k)
        _check_candidates(cand, data.n_items, k)
        assert len(cand) > 0, f"{fitted.name} found nothing for the contract query"
        assert set(cand.sources) == {fitted.name}

    def test_filters_and_exclusions_hold(self, fitted: CandidateSource, data: TrainingData) -> None:
        cheap = ItemFilter(price_max=150.0)  # items 0 .. 14
        exclude = np.array([0, 2, 4])
        query = _query_for(fitted, data, item_filter=cheap, exclude=exclude)
        cand = fitted(query, data.n_items)
        _check_candidates(cand, data.n_items, data.n_items)
        assert set(cand.items.tolist()) <= set(range(15)) - {0, 2, 4}

    def test_seed_items_alone_are_a_query(
        self, fitted: CandidateSource, data: TrainingData
    ) -> None:
        seeds = np.array([0, 1])  # a product page or a board: no user history
        query = _query_for(fitted, data, history=None, weights=None, user=None)
        query = SourceQuery(**{**query.__dict__, "items": seeds, "exclude": seeds})
        cand = fitted(query, 10)
        _check_candidates(cand, data.n_items, 10)
        assert not set(cand.items.tolist()) & {0, 1}

    def test_save_and_load_give_equal_results(
        self, fitted: CandidateSource, data: TrainingData, tmp_path: Path
    ) -> None:
        fitted.save(tmp_path / "saved")
        meta = json.loads((tmp_path / "saved" / SOURCE_FILE).read_text())
        assert meta["kind"] == fitted.kind and meta["n_items"] == data.n_items
        assert not list((tmp_path / "saved").glob("*.pkl")), "no pickles"
        loaded = load_source(tmp_path / "saved", data.catalog)
        assert type(loaded) is type(fitted) and loaded.config == fitted.config
        query = _query_for(fitted, data)
        a, b = fitted(query, 10), loaded(query, 10)
        assert a.items.tolist() == b.items.tolist()
        np.testing.assert_allclose(a.score("retrieval"), b.score("retrieval"), rtol=1e-5)
        if fitted.full_ranking:
            hist = [np.asarray(s) for s in data.sequences[:5]]
            np.testing.assert_allclose(fitted.score(hist), loaded.score(hist), rtol=1e-5)

    def test_unknown_user_and_items_follow_the_policy(
        self, fitted: CandidateSource, data: TrainingData
    ) -> None:
        n = data.n_items
        history = np.array([n + 5, -1, 3, n])
        query = _query_for(
            fitted,
            data,
            items=np.array([n + 3, 1]),
            history=history,
            weights=np.ones(len(history)),
            user="nobody-we-know",
            exclude=np.array([n + 100, 2]),
        )
        cand = fitted(query, 10)  # unknown items are dropped, never a KeyError
        _check_candidates(cand, n, 10)
        assert 2 not in cand.items
        lost = _query_for(fitted, data, items=np.array([n + 1]), history=np.array([-3]))
        _check_candidates(fitted(replace_weights(lost), 10), n, 10)
        if fitted.full_ranking:
            s = fitted.score([np.array([n + 7]), np.array([], dtype=np.int64)], users=["x", None])
            assert s.shape == (2, n) and np.isfinite(s).all()

    def test_refitting_replaces_the_state(self, source_name: str, data: TrainingData) -> None:
        source = fast_source(source_name)
        assert source.fit(data) is source and source.fitted
        assert source.fit(data) is source and source.n_items_ == data.n_items


def replace_weights(query: SourceQuery) -> SourceQuery:
    """``query`` with one weight per history item (ones)."""
    n = 0 if query.history is None else len(query.history)
    return SourceQuery(**{**query.__dict__, "weights": np.ones(n)})
