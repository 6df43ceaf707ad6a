"""Recall@k of served pages and ranked lists, per customer, and paired differences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from moodboard.build.fusion import rank_metrics


def recall_at(lists: Sequence[np.ndarray], targets: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Per user, the share of their targets in the first ``k`` items of their list (``-1``
    pads a short list)."""
    ranks = []
    for lst, t in zip(lists, targets, strict=True):
        pos = {int(x): n for n, x in enumerate(np.asarray(lst)[:k]) if x >= 0}
        ranks.append(np.array([pos.get(int(x), k) for x in t], dtype=np.int64))
    return rank_metrics(ranks, (k,))[f"recall@{k}"]


@dataclass(frozen=True)
class Recalls:
    """Per-customer recalls of one method's lists.

    Attributes
    ----------
    every
        Recall of all the items bought after the cutoff, one per evaluated customer.
    new
        Recall of the new items, one per customer with new items (in customer order).
    """

    every: np.ndarray
    new: np.ndarray

    @classmethod
    def of(
        cls,
        bought: Sequence[np.ndarray],
        new: Sequence[np.ndarray],
        k: int,
        lists: Sequence[np.ndarray],
        new_lists: Sequence[np.ndarray] | None = None,
    ) -> Recalls:
        """Score each customer's list against what they ``bought`` and, for those with
        ``new`` items, ``new_lists`` (default ``lists``) against those."""
        new_lists = lists if new_lists is None else new_lists
        has_new = [n for n, t in enumerate(new) if len(t)]
        every = recall_at(lists, bought, k)
        fresh = recall_at([new_lists[n] for n in has_new], [new[n] for n in has_new], k)
        return cls(every, fresh)

    def summary(self, k: int) -> dict[str, Any]:
        """``recall@k``, ``recall@k_new`` (means, 4 decimals), ``users``, ``users_new``."""
        return {
            f"recall@{k}": round(float(self.every.mean()), 4) if len(self.every) else 0.0,
            f"recall@{k}_new": round(float(self.new.mean()), 4) if len(self.new) else 0.0,
            "users": len(self.every),
            "users_new": len(self.new),
        }


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Mean of ``a - b`` (per customer) and its 95% bootstrap interval (2,000 resamples of
    the customers)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not len(d):
        return {"estimate": 0.0, "ci": [0.0, 0.0]}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(2000, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"estimate": round(float(d.mean()), 4), "ci": [round(float(lo), 4), round(float(hi), 4)]}
