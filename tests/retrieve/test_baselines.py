"""Baselines: closed forms against dense references (the contract: tests/retrieve/test_contract)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodboard.errors import InputError
from moodboard.retrieve import TrainingData
from moodboard.retrieve.baselines import (
    ALS,
    EASE,
    ALSConfig,
    EASEConfig,
    ItemKNN,
    ItemKNNConfig,
    Popularity,
    interaction_matrix,
)
from moodboard.retrieve.registry import BASELINES, load_source, source_class


@pytest.fixture(scope="module")
def toy() -> TrainingData:
    rng = np.random.default_rng(0)
    seqs = [rng.choice(40, size=rng.integers(2, 9), replace=False) for _ in range(200)]
    return TrainingData(n_items=40, sequences=seqs)


def _dense(data: TrainingData) -> np.ndarray:
    return interaction_matrix(data.sequences, data.n_items).toarray().astype(np.float64)


def test_ease_equals_the_closed_form(toy: TrainingData) -> None:
    x = _dense(toy)
    p = np.linalg.inv(x.T @ x + 7.0 * np.eye(40))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    model = EASE(EASEConfig(l2=7.0)).fit(toy)
    assert model.weights_.flags["C_CONTIGUOUS"]  # row access when scoring
    np.testing.assert_allclose(model.weights_, b, atol=1e-5)
    np.testing.assert_allclose(model.score(toy.sequences[:5]), x[:5] @ b, atol=1e-5)


def test_ease_neighbours_keep_each_items_largest_weights_and_reload(
    toy: TrainingData, tmp_path: Path
) -> None:
    dense = EASE(EASEConfig(l2=7.0)).fit(toy).weights_
    top = np.zeros_like(dense)
    for i in range(40):
        j = np.argsort(-np.abs(dense[i]), kind="stable")[:6]
        top[i, j] = dense[i, j]
    assert (top < 0).any()  # negative weights are neighbours too
    model = EASE(EASEConfig(l2=7.0, neighbours=6)).fit(toy)
    np.testing.assert_allclose(model.weights_.toarray(), top, atol=1e-6)
    x = _dense(toy)
    np.testing.assert_allclose(model.score(toy.sequences[:5]), x[:5] @ top, atol=1e-5)
    model.save(tmp_path / "ease")
    assert not (tmp_path / "ease" / "weights.npy").exists()  # sparse: no n_items^2 file
    loaded = load_source(tmp_path / "ease")
    np.testing.assert_allclose(loaded.score(toy.sequences[:5]), x[:5] @ top, atol=1e-5)


def test_ease_ignores_items_nobody_bought(toy: TrainingData) -> None:
    wider = TrainingData(n_items=50, sequences=toy.sequences)  # items 40..49 never bought
    w = EASE(EASEConfig(l2=7.0)).fit(wider).weights_
    np.testing.assert_allclose(w[:40, :40], EASE(EASEConfig(l2=7.0)).fit(toy).weights_, atol=1e-6)
    assert not w[40:].any() and not w[:, 40:].any()


def test_itemknn_equals_a_dense_cosine_with_shrink(toy: TrainingData) -> None:
    x = _dense(toy)
    co = x.T @ x
    norms = np.sqrt(np.diag(co))
    sim = co / (norms[:, None] * norms[None, :] + 2.0)
    np.fill_diagonal(sim, 0.0)
    top = np.zeros_like(sim)
    for i in range(40):
        j = np.argsort(-sim[i], kind="stable")[:6]
        top[i, j] = sim[i, j]
    model = ItemKNN(ItemKNNConfig(neighbours=6, shrink=2.0)).fit(toy)
    np.testing.assert_allclose(model.similarity_.toarray(), top, atol=1e-6)
    np.testing.assert_allclose(model.score(toy.sequences[:3]), x[:3] @ top, atol=1e-5)


def test_popularity_counts_training_events(toy: TrainingData) -> None:
    scores = Popularity().fit(toy).score([np.array([1]), np.array([], dtype=np.int64)])
    np.testing.assert_array_equal(scores[0], _dense(toy).sum(0))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_als_is_seeded_and_ranks_co_bought_items_first() -> None:
    # two disjoint "tastes": items 0-9 bought together, items 10-19 bought together
    rng = np.random.default_rng(1)
    seqs = [rng.choice(10, 5, replace=False) + 10 * (u % 2) for u in range(200)]
    data = TrainingData(n_items=20, sequences=seqs)
    cfg = ALSConfig(factors=2, regularization=1.0, iterations=10, seed=3)
    a, b = ALS(cfg).fit(data), ALS(cfg).fit(data)
    s = a.score([np.array([0, 1, 2]), np.array([15])])
    np.testing.assert_array_equal(s, b.score([np.array([0, 1, 2]), np.array([15])]))
    assert set(np.argsort(-s[0])[:10]) == set(range(10))
    assert set(np.argsort(-s[1])[:10]) == set(range(10, 20))


@pytest.mark.parametrize("name", BASELINES)
def test_items_outside_the_catalog_are_refused_at_fit(name: str) -> None:
    with pytest.raises(InputError, match="Map ids to indices"):
        source_class(name)().fit(TrainingData(n_items=3, sequences=[np.array([0, 5])]))
