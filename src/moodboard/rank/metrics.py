"""Offline ranking metrics with linear gains (the trec_eval convention).

``ndcg_at_k`` divides the DCG of the ranking by the DCG of the ideal ordering of the query's
judged gains; unjudged items count as gain 0. ``mrr_best`` is the reciprocal rank of the first
retrieved item carrying the query's highest judged gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def dcg(gains: Sequence[float] | np.ndarray, k: int) -> float:
    """Discounted cumulative gain of the first ``k`` gains."""
    g = np.asarray(gains, dtype=np.float64)[:k]
    return float((g * _discounts(len(g))).sum())


def ndcg_at_k(ranking: Sequence[str], judged: Mapping[str, float], k: int = 10) -> float:
    """NDCG@k of one ranking against the query's judged gains.

    Raises
    ------
    ValueError
        If every judged gain is 0 (the query has no ideal ranking; leave it out).
    """
    ideal = dcg(sorted(judged.values(), reverse=True), k)
    if ideal <= 0:
        raise ValueError("NDCG is undefined for a query whose judged gains are all 0.")
    return dcg([judged.get(i, 0.0) for i in ranking[:k]], k) / ideal


def mrr_best(ranking: Sequence[str], judged: Mapping[str, float]) -> float:
    """1 / rank of the first item with the query's highest gain (0 if it is not retrieved)."""
    best = max(judged.values())
    for r, item in enumerate(ranking, start=1):
        if judged.get(item, 0.0) == best:
            return 1.0 / r
    return 0.0


def recall_at_k(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant items found in the first ``k``."""
    if not relevant:
        raise ValueError("recall is undefined without relevant items.")
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mean_metrics(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, float]], k: int = 10
) -> dict[str, float]:
    """Mean NDCG@k and MRR over the queries with a positive ideal DCG."""
    nd, mr = [], []
    for q, judged in qrels.items():
        if max(judged.values(), default=0.0) <= 0:
            continue
        ranking = rankings.get(q, [])
        nd.append(ndcg_at_k(ranking, judged, k))
        mr.append(mrr_best(ranking, judged))
    return {
        f"ndcg@{k}": float(np.mean(nd)) if nd else 0.0,
        "mrr": float(np.mean(mr)) if mr else 0.0,
    }


def paired(scores: np.ndarray, labels: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` and ``labels`` as flat float64 arrays of the same, non-zero length.

    Raises
    ------
    ValueError
        If the lengths differ or there are no rows (the message names ``who``).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=np.float64).ravel()
    if len(s) != len(y) or len(s) == 0:
        raise ValueError(
            f"{who} needs as many labels as scores, at least one. "
            f"Got {len(s)} scores and {len(y)} labels instead."
        )
    return s, y


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE of binary probabilities: over ``bins`` equal-width bins of ``probs`` on [0, 1], the
    share-weighted mean of ``|mean(label) - mean(prob)|`` (bins are closed on the right, the
    first also on the left: the binning of ``torchmetrics``' ``BinaryCalibrationError``).

    Raises
    ------
    ValueError
        If the arrays differ in length, are empty, or a probability is outside [0, 1].
    """
    p, y = paired(probs, labels, "expected_calibration_error")
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("ECE takes probabilities in [0, 1]: calibrate the scores first.")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=y, minlength=bins) - np.bincount(which, p, minlength=bins)
    )
    return float(gap.sum() / count.sum())


def head_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """AUC, log loss and ECE of one head's probabilities (AUC is NaN without both classes).

    Raises
    ------
    ValueError
        As :func:`expected_calibration_error`.
    """
    from sklearn.metrics import log_loss, roc_auc_score

    p, y = paired(probs, labels, "head_metrics")
    ece = expected_calibration_error(y, p)
    both = 0 < y.sum() < len(y)
    return {
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "logloss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "ece": ece,
    }
