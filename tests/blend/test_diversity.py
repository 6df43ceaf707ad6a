"""Diversity: strength 0 is the utility order; more strength, less similar pages; the DPP's
fast Cholesky update agrees with log-determinants computed from scratch."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.blend import DPP, MMR, DiversityConfig
from moodboard.data import Candidates
from moodboard.errors import ConfigError

DIVERSIFIERS = [MMR, DPP]


def _catalog(seed: int, n_items: int = 400, dim: int = 32, clusters: int = 8):
    """Clustered unit embeddings; utility favours a few clusters, so the utility order repeats
    itself."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    label = rng.integers(0, clusters, n_items)
    emb = centers[label] + 0.35 * rng.normal(size=(n_items, dim))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    items = rng.choice(n_items, 300, replace=False)
    utility = rng.random(300) * 0.3 + (label[items] < 2) * 0.7
    cand = Candidates(items, {"utility": utility, "retrieval": rng.random(300)})
    return cand.take(rng.permutation(300)), emb


def _ils(items: np.ndarray, emb: np.ndarray) -> float:
    """Intra-list similarity: the mean pairwise cosine."""
    e = emb[items]
    s = e @ e.T
    n = len(items)
    return float((s.sum() - np.trace(s)) / (n * (n - 1)))


@pytest.mark.parametrize("cls", DIVERSIFIERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strength_zero_is_the_utility_order(cls, seed: int) -> None:
    cand, emb = _catalog(seed)
    out = cls(DiversityConfig(strength=0.0, depth=300))(cand, emb)
    assert out.items.tolist() == cand.sort_by("utility").items.tolist()


@pytest.mark.parametrize("cls", DIVERSIFIERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strength_lowers_intra_list_similarity(cls, seed: int) -> None:
    cand, emb = _catalog(seed)
    base = _ils(cand.sort_by("utility").items[:20], emb)
    for strength, drop in ((0.2, 0.0), (0.5, 0.1), (0.8, 0.2)):
        out = cls(DiversityConfig(strength=strength, depth=20))(cand, emb)
        ils = _ils(out.items[:20], emb)
        assert ils <= base - drop, (strength, ils, base)
    # the page is the same candidates, re-ordered, with their columns
    assert sorted(out.items.tolist()) == sorted(cand.items.tolist())
    assert set(out.scores) == set(cand.scores)
    assert out.items[0] == cand.sort_by("utility").items[0]  # the best item still leads


@pytest.mark.parametrize("cls", DIVERSIFIERS)
def test_positions_beyond_the_depth_follow_the_utility_order(cls) -> None:
    cand, emb = _catalog(3)
    out = cls(DiversityConfig(strength=0.6, depth=10))(cand, emb)
    head = set(out.items[:10].tolist())
    rest = [i for i in cand.sort_by("utility").items.tolist() if i not in head]
    assert out.items[10:].tolist() == rest


@pytest.mark.parametrize("cls", DIVERSIFIERS)
def test_the_picks_come_from_the_window_and_equal_a_run_on_the_window_alone(cls) -> None:
    cand, emb = _catalog(4)
    ordered = cand.sort_by("utility")
    cfg = DiversityConfig(strength=0.6, depth=20, window=60)
    out = cls(cfg)(cand, emb)
    alone = cls(cfg.model_copy(update={"window": 0}))(ordered.head(60), emb)
    assert out.items[:20].tolist() == alone.items[:20].tolist()
    assert set(out.items[:20].tolist()) <= set(ordered.items[:60].tolist())
    assert out.items[60:].tolist() == ordered.items[60:].tolist()  # beyond: utility order
    assert set(out.items[20:60].tolist()) == set(ordered.items[:60].tolist()) - set(
        out.items[:20].tolist()
    )


def _greedy_logdet(rel: np.ndarray, emb: np.ndarray, strength: float, k: int) -> list[int]:
    """The greedy MAP of the DPP by recomputing log det of the kernel at every step."""
    theta = 1 - strength
    q = np.exp(theta / (2 * (1 - theta)) * rel)
    kernel = q[:, None] * (emb @ emb.T).astype(np.float64) * q[None, :]
    picked: list[int] = []
    for _ in range(k):
        best, best_val = -1, -np.inf
        for i in range(len(rel)):
            if i in picked:
                continue
            idx = [*picked, i]
            sign, val = np.linalg.slogdet(kernel[np.ix_(idx, idx)])
            if sign > 0 and val > best_val + 1e-9:
                best, best_val = i, val
        picked.append(best)
    return picked


@pytest.mark.parametrize("strength", [0.3, 0.7])
def test_dpp_fast_greedy_agrees_with_log_determinants(strength: float) -> None:
    rng = np.random.default_rng(7)
    emb = rng.normal(size=(40, 16))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    utility = rng.random(40)
    cand = Candidates(np.arange(40), {"utility": utility})
    out = DPP(DiversityConfig(strength=strength, depth=12))(cand, emb)
    order = cand.sort_by("utility")
    u = order.score("utility").astype(np.float64)
    rel = (u - u.min()) / (u.max() - u.min())
    expected = _greedy_logdet(rel, emb[order.items], strength, 12)
    assert out.items[:12].tolist() == order.items[expected].tolist()


def test_dpp_pushes_a_duplicate_down_and_items_without_embeddings_count_as_unique() -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 8)).astype(np.float32)
    emb[1] = emb[0]  # item 1 duplicates item 0
    emb[2] = 0.0  # item 2 has no embedding
    cand = Candidates(np.arange(6), {"utility": [1.0, 0.99, 0.5, 0.4, 0.3, 0.2]})
    out = DPP(DiversityConfig(strength=0.5, depth=6))(cand, emb)
    assert out.items[0] == 0
    assert out.items.tolist().index(1) == 5
    assert out.items.tolist().index(2) < 5


@pytest.mark.parametrize("cls", DIVERSIFIERS)
def test_embeddings_without_a_row_for_a_candidate_are_an_error(cls) -> None:
    cand = Candidates(np.array([0, 9]), {"utility": [1.0, 0.5]})
    with pytest.raises(ConfigError, match="at least 10"):
        cls()(cand, np.ones((5, 4), dtype=np.float32))
    with pytest.raises(KeyError, match="utility"):
        cls()(Candidates(np.array([0, 1]), {"retrieval": [1.0, 0.5]}), np.eye(2))
