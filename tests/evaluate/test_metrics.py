"""Our metrics against a reference implementation (ir-measures / trec_eval)."""

from __future__ import annotations

import ir_measures
import numpy as np
import pytest
from ir_measures import nDCG

from moodboard.rank.metrics import mrr_best, ndcg_at_k


def test_ndcg_hand_checked() -> None:
    judged = {"a": 2.0, "b": 1.0, "c": 0.0}
    ideal = 2 + 1 / np.log2(3)
    assert ndcg_at_k(["b", "x", "a"], judged, 10) == pytest.approx((1 + 2 / np.log2(4)) / ideal)
    assert ndcg_at_k(["a", "b"], judged, 10) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": 0.0}, 10)
    assert mrr_best(["x", "b", "a"], judged) == pytest.approx(1 / 3)


def test_ndcg_equals_ir_measures_on_random_runs() -> None:
    rng = np.random.default_rng(3)
    qrels, run, ours = [], [], []
    for q in range(60):
        docs = [f"d{i}" for i in rng.choice(200, 40, replace=False)]
        judged = {d: int(g) for d, g in zip(docs[:12], rng.integers(0, 7, 12), strict=True)}
        if max(judged.values()) == 0:
            judged[docs[0]] = 3
        ranking = list(rng.permutation(docs))
        qrels += [ir_measures.Qrel(str(q), d, g) for d, g in judged.items()]
        run += [
            ir_measures.ScoredDoc(str(q), d, float(len(ranking) - r)) for r, d in enumerate(ranking)
        ]
        ours.append(ndcg_at_k(ranking, {d: float(g) for d, g in judged.items()}, 10))
    ref = ir_measures.calc_aggregate([nDCG @ 10], qrels, run)[nDCG @ 10]
    assert np.mean(ours) == pytest.approx(ref, abs=1e-9)
