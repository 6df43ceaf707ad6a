"""Weighted reciprocal-rank fusion of recommenders' top lists, tuned on the validation step.

Each member contributes ``w_m / (rrf_k + position)`` (position 1-based) for the items of its
top-``K`` list (history items already excluded); an item's fused score is the sum, and items in
no list are not ranked. The weights and ``rrf_k`` are chosen by coordinate ascent on the
validation NDCG@10 from all weights 1.

This is training (the build tunes the feed's fusion with it), shared with ``moodboard evaluate
recs``, which tunes its ``fused`` method the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_log = logging.getLogger(__name__)


def exclude_histories(scores: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Set the scores of each row's history items to ``-inf``, in place; returns ``scores``."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    if lengths.sum():
        rows = np.repeat(np.arange(len(histories)), lengths)
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        ok = (cols >= 0) & (cols < scores.shape[1])
        scores[rows[ok], cols[ok]] = -np.inf
    return scores


def rank_metrics(ranks: Sequence[np.ndarray], ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-user HR@k, NDCG@k and Recall@k from the 0-based ranks of each user's targets.

    HR is 1 when a target is in the top k; Recall the share of the targets in the top k; NDCG
    has binary gains and the ideal DCG of ``min(len(targets), k)`` hits. With one target,
    Recall@k = HR@k and NDCG@k = ``1 / log2(rank + 2)`` for a hit.
    """
    out: dict[str, np.ndarray] = {}
    kmax = max(ks)
    disc = 1.0 / np.log2(np.arange(2, kmax + 2))
    ideal = np.cumsum(disc)
    if all(len(r) == 1 for r in ranks):  # leave-one-out: one target per user
        first = np.fromiter((r[0] for r in ranks), dtype=np.int64, count=len(ranks))
        for k in ks:
            hit = first < k
            out[f"hr@{k}"] = out[f"recall@{k}"] = hit.astype(np.float64)
            out[f"ndcg@{k}"] = np.where(hit, disc[np.minimum(first, kmax - 1)], 0.0)
        return out
    for k in ks:
        hr = np.zeros(len(ranks))
        rec = np.zeros(len(ranks))
        nd = np.zeros(len(ranks))
        for u, r in enumerate(ranks):
            top = r[r < k]
            if len(top):
                hr[u] = 1.0
                rec[u] = len(top) / len(r)
                nd[u] = disc[top].sum() / ideal[min(len(r), k) - 1]
        out[f"hr@{k}"], out[f"ndcg@{k}"], out[f"recall@{k}"] = hr, nd, rec
    return out


def top_lists(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` best items, best first (ties: lower index), ``-1`` past the finite ones.

    ``scores`` already has its excluded items at ``-inf``.
    """
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    items = np.take_along_axis(part, order, axis=1).astype(np.int32)
    items[~np.isfinite(np.take_along_axis(vals, order, axis=1))] = -1
    return items


@dataclass(frozen=True, eq=False)
class FusionTable:
    """The union of the members' lists for one step, aligned by (user, item).

    Attributes
    ----------
    rows, items
        One entry per distinct (user, item) in any list, sorted by user then item.
    positions
        ``(n_members, n_entries)``: the 1-based position in each member's list, 0 if absent.
    pair_rows, pair_entry
        One per (user, target): the user and the target's entry (-1 if in no list).
    starts
        ``starts[u] .. starts[u + 1]`` are user ``u``'s entries.
    lengths
        Targets per user.
    """

    rows: np.ndarray
    items: np.ndarray
    positions: np.ndarray
    pair_rows: np.ndarray
    pair_entry: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @classmethod
    def build(
        cls, lists: Sequence[np.ndarray], targets: Sequence[np.ndarray], n_items: int
    ) -> FusionTable:
        """From the members' ``(n_users, K)`` lists and each user's targets."""
        n_users = len(targets)
        keys, member, pos = [], [], []
        for m, lst in enumerate(lists):
            r, p = np.nonzero(lst >= 0)
            keys.append(r.astype(np.int64) * n_items + lst[r, p])
            member.append(np.full(len(r), m, dtype=np.int64))
            pos.append(p + 1)
        allkeys = np.concatenate(keys)
        union, inverse = np.unique(allkeys, return_inverse=True)
        positions = np.zeros((len(lists), len(union)), dtype=np.int32)
        positions[np.concatenate(member), inverse] = np.concatenate(pos)
        rows = union // n_items
        lengths = np.fromiter((len(t) for t in targets), dtype=np.int64, count=n_users)
        pair_rows = np.repeat(np.arange(n_users), lengths)
        tkeys = pair_rows * n_items + np.concatenate([np.asarray(t, np.int64) for t in targets])
        at = np.searchsorted(union, tkeys)
        found = (at < len(union)) & (union[np.minimum(at, len(union) - 1)] == tkeys)
        return cls(
            rows=rows,
            items=union % n_items,
            positions=positions,
            pair_rows=pair_rows,
            pair_entry=np.where(found, at, -1),
            starts=np.searchsorted(rows, np.arange(n_users + 1)),
            lengths=lengths,
        )

    def scores(self, weights: Sequence[float], rrf_k: float) -> np.ndarray:
        """The fused score of every entry."""
        p = self.positions
        rr = np.where(p > 0, 1.0 / (rrf_k + p), 0.0)
        return np.asarray(weights, dtype=np.float64) @ rr

    def top(
        self, weights: Sequence[float], rrf_k: float, depth: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each user's ``depth`` best fused items and their fused scores, best first.

        Ties go to the lower item index, as in ``ranks``; rows are padded with item ``-1``
        and score ``-inf`` past the user's entries. Returns ``(items, scores)``, both
        ``(n_users, depth)`` (int32, float64).
        """
        s = self.scores(weights, rrf_k)
        order = np.lexsort((self.items, -s, self.rows))
        rows = self.rows[order]
        pos = np.arange(len(order)) - self.starts[rows]
        keep = pos < depth
        n_users = len(self.starts) - 1
        items = np.full((n_users, depth), -1, dtype=np.int32)
        scores = np.full((n_users, depth), -np.inf)
        items[rows[keep], pos[keep]] = self.items[order[keep]]
        scores[rows[keep], pos[keep]] = s[order[keep]]
        return items, scores

    def ranks(self, weights: Sequence[float], rrf_k: float, n_items: int) -> list[np.ndarray]:
        """0-based fused rank of every target (``n_items`` if in no list), per user."""
        s = self.scores(weights, rrf_k)
        out = np.full(len(self.pair_rows), n_items, dtype=np.int64)
        hit = np.flatnonzero(self.pair_entry >= 0)
        for lo in range(0, len(hit), 4096):
            pairs = hit[lo : lo + 4096]
            e = self.pair_entry[pairs]
            r = self.pair_rows[pairs]
            a, b = self.starts[r], self.starts[r + 1]
            span = b - a
            owner = np.repeat(np.arange(len(pairs)), span)
            idx = np.repeat(a - np.cumsum(span) + span, span) + np.arange(span.sum())
            st, it = s[e][owner], self.items[e][owner]
            ahead = (s[idx] > st) | ((s[idx] == st) & (self.items[idx] < it))
            out[pairs] = np.bincount(owner, weights=ahead, minlength=len(pairs)).astype(np.int64)
        return np.split(out, np.cumsum(self.lengths)[:-1])


@dataclass(frozen=True)
class FusionChoice:
    """Tuned fusion parameters and the validation NDCG@10 they reached."""

    weights: tuple[float, ...]
    rrf_k: float
    valid_ndcg: float


def tune_fusion(
    table: FusionTable,
    n_items: int,
    grid: Sequence[float],
    rrf_ks: Sequence[float],
    rounds: int = 2,
) -> FusionChoice:
    """Coordinate ascent over each member's weight in ``grid`` and ``rrf_k`` in ``rrf_ks``."""
    n_members = table.positions.shape[0]

    def value(w: Sequence[float], k: float) -> float:
        if not any(w):
            return -1.0
        return float(rank_metrics(table.ranks(w, k, n_items), (10,))["ndcg@10"].mean())

    weights, k = [1.0] * n_members, float(rrf_ks[0])
    best = value(weights, k)
    for _ in range(rounds):
        improved = False
        for cand_k in rrf_ks:
            v = value(weights, cand_k)
            if v > best:
                best, k, improved = v, float(cand_k), True
        for m in range(n_members):
            for g in grid:
                w = [*weights[:m], float(g), *weights[m + 1 :]]
                v = value(w, k)
                if v > best:
                    best, weights, improved = v, w, True
        if not improved:
            break
    _log.info("fusion: weights %s, rrf_k %s, validation NDCG@10 %.4f", weights, k, best)
    return FusionChoice(tuple(weights), k, best)
