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


@pytest.mark.parametrize("bins", [10, 15])
def test_calibration_error_equals_torchmetrics(bins: int) -> None:
    import torch
    from torchmetrics.classification import BinaryCalibrationError

    from moodboard.rank.metrics import expected_calibration_error

    rng = np.random.default_rng(bins)
    p = rng.beta(0.5, 3.0, 5_000)
    y = (rng.random(5_000) < np.clip(p * 1.3, 0, 1)).astype(np.float64)  # under-confident
    ref = BinaryCalibrationError(n_bins=bins, norm="l1")(torch.tensor(p), torch.tensor(y).long())
    assert expected_calibration_error(y, p, bins) == pytest.approx(float(ref), abs=1e-6)
    assert expected_calibration_error(y, np.clip(p * 1.3, 0, 1), bins) < float(ref) / 2


def test_head_metrics_name_what_a_ranker_reports() -> None:
    from moodboard.rank.metrics import head_metrics

    y = np.array([0, 0, 1, 1, 0, 1], dtype=float)
    m = head_metrics(y, np.array([0.1, 0.2, 0.8, 0.7, 0.3, 0.9]))
    assert m["auc"] == 1.0 and m["logloss"] < 0.35 and set(m) == {"auc", "logloss", "ece"}
    assert np.isnan(head_metrics(np.zeros(3), np.full(3, 0.1))["auc"])
    with pytest.raises(ValueError, match="calibrate"):
        head_metrics(y, np.full(6, 1.5))
