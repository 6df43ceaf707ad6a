"""Personalized search: the shopper's interests as features of the search rank stage.

``PersonalFeatures`` is fitted once per catalog (unit item vectors of ``dense/text`` and the
codes of the taste attributes the catalog has); given a shopper's history (engaged items, oldest
first, and the weight of each action: a purchase weighs more than a click) it scores each
candidate by ``PERSONAL_FEATURES``:

- ``p_cos``: cosine between the item's vector and the history's weighted mean vector;
- ``p_gender``, ``p_type``, ``p_colour``, ``p_usage``, ``p_season``: the share of the
  history's weight on items with the candidate's gender, article type, colour, usage, season;
- ``p_seen``: whether the shopper engaged with the item itself.

A shopper without a history (anonymous, new) gets zeros: the page is the unpersonalized one.

``rank/multihead`` reads the same features as dense inputs (``PersonalFeatures.rows``: one
history per row, its actions weighted by ``rank.rows.ACTION_WEIGHTS``).

The rank stages ``rank/personal`` (over the fused order) and ``rank/lambdamart_personal``
(over ``rank/lambdamart``'s order) add ``strength x sum(weight x feature)`` to the inner order's
standardized score over the first ``depth`` candidates (``PersonalConfig``). The search prepare
step puts the history and a function giving the catalog's features (fitted on first use) in
the rank context (``history``, ``personal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Candidates, Catalog
from moodboard.rank.registry import NoopRanker, Ranker, RankQuery, register_ranker
from moodboard.rank.search import LAMBDAMART, LTR, SearchModel, lambdamart_stage

#: Catalog attribute of each attribute-share feature.
ATTRIBUTES: Final = {
    "p_gender": "gender",
    "p_type": "articleType",
    "p_colour": "baseColour",
    "p_usage": "usage",
    "p_season": "season",
}
PERSONAL_FEATURES: Final = ("p_cos", *ATTRIBUTES, "p_seen")
#: The score column the stages add: the personal part of the final ``ltr`` score.
PERSONAL: Final = "personal"
#: Context keys the search prepare step fills.
FEATURES_KEY, HISTORY_KEY = "personal", "history"


class PersonalConfig(BaseModel):
    """How much the shopper's interests move the search order.

    Parameters
    ----------
    strength
        Weight of the personal score against the inner order's standardized score.
    weights
        Weight of each of ``PERSONAL_FEATURES`` in the personal score (missing: 0).
    depth
        How many of the first candidates are re-ordered.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: float = Field(default=1.0, ge=0, le=100)
    weights: dict[str, float] = Field(
        default_factory=lambda: {name: 1.0 for name in PERSONAL_FEATURES if name != "p_seen"}
    )
    depth: int = Field(default=100, ge=1, le=10_000)


@dataclass(frozen=True)
class PersonalFeatures:
    """Per-catalog facts of the personal features: unit item vectors (or None) and, per
    attribute feature, each item's value code (-1: none)."""

    vectors: np.ndarray | None
    codes: Mapping[str, np.ndarray]

    @classmethod
    def fit(cls, catalog: Catalog, vectors: np.ndarray | None = None) -> PersonalFeatures:
        """The facts of ``catalog`` (attributes it lacks are left out) and its item vectors."""
        codes = {}
        for name, attr in ATTRIBUTES.items():
            values = np.asarray(catalog.attribute(attr), dtype=object)
            present = np.array([bool(v) for v in values])
            if not present.any():
                continue
            _, code = np.unique(np.where(present, values, "").astype(str), return_inverse=True)
            codes[name] = np.where(present, code, -1).astype(np.int64)
        unit = None
        if vectors is not None and len(vectors) == len(catalog):
            v = np.asarray(vectors, dtype=np.float32)  # no copy of float32 vectors
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            unit = v if np.allclose(norms, 1.0, atol=1e-3) else v / np.maximum(norms, 1e-12)
        return cls(unit, codes)

    def __call__(self, items: np.ndarray, history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The ``(len(items), len(PERSONAL_FEATURES))`` features of candidate ``items`` for one
        history (item indices) with its action weights; zeros for an empty history."""
        return self.rows(items, np.asarray(history)[None, :], np.asarray(weights)[None, :])

    def rows(self, items: np.ndarray, history: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The features of candidate ``items`` ``(B,)``, each against its own history:
        ``history`` ``(B, N)`` item indices (``-1`` pad) and their action ``weights``
        ``(B, N)``, or ``(1, N)`` for one history shared by every row (rows that all share one
        are computed that way); ``(B, len(PERSONAL_FEATURES))``."""
        items = np.asarray(items, dtype=np.int64)
        history = np.asarray(history, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64).reshape(history.shape)
        w = np.where((w > 0) & (history >= 0), w, 0.0)
        if len(history) > 1 and (history == history[0]).all() and (w == w[0]).all():
            history, w = history[:1], w[:1]  # one shopper's page
        total = w.sum(1, keepdims=True)
        w = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
        safe = np.maximum(history, 0)
        out = np.zeros((len(items), len(PERSONAL_FEATURES)), dtype=np.float64)
        if self.vectors is not None and history.shape[1]:
            step = max(1, (1 << 22) // (history.shape[1] * self.vectors.shape[1]))
            for lo in range(0, len(history), step):  # (rows, N, dim) a chunk at a time
                sl = slice(lo, lo + step)
                mean = np.einsum("bn,bnd->bd", w[sl], self.vectors[safe[sl]], dtype=np.float64)
                norm = np.linalg.norm(mean, axis=1)
                mean = np.divide(
                    mean, norm[:, None], out=np.zeros_like(mean), where=norm[:, None] > 0
                )
                rows = slice(None) if len(history) == 1 else sl
                out[rows, 0] = (self.vectors[items[rows]] * mean).sum(1)
        for j, name in enumerate(PERSONAL_FEATURES[1:-1], start=1):
            codes = self.codes.get(name)
            if codes is None:
                continue
            c = codes[items]
            if len(history) == 1:  # the history's share of each value, then one look-up
                share = np.bincount(np.maximum(codes[safe[0]], 0), w[0] * (codes[safe[0]] >= 0),
                                    minlength=int(codes.max()) + 1)  # fmt: skip
                out[:, j] = np.where(c >= 0, share[np.maximum(c, 0)], 0.0)
            else:
                out[:, j] = (w * ((codes[safe] == c[:, None]) & (c[:, None] >= 0))).sum(1)
        out[:, -1] = ((history == items[:, None]) & (w > 0)).any(1)
        return out


def _standard(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


class PersonalStage:
    """A search rank stage that re-orders its inner ranker's list by the shopper's interests.

    Parameters
    ----------
    inner
        The ranker whose order is personalized (``rank/noop``: the fused order).
    config
        Strength, feature weights and depth; default ``PersonalConfig()``.
    """

    def __init__(self, inner: Ranker, config: PersonalConfig | None = None) -> None:
        self.inner = inner
        self.config = config or PersonalConfig()
        self.name = "rank/personal" if inner.name == NoopRanker.name else f"{inner.name}_personal"
        self._w = np.array([self.config.weights.get(f, 0.0) for f in PERSONAL_FEATURES])

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        """The inner order, then the first ``depth`` re-sorted by ``standardized inner score +
        strength x personal score`` (the inner order when the shopper has no history)."""
        ranked = self.inner(cand, query)
        make = query.context.get(FEATURES_KEY)
        history = query.context.get(HISTORY_KEY)
        if len(ranked) == 0 or make is None or history is None or len(history[0]) == 0:
            return ranked
        facts: PersonalFeatures = make()
        n = min(self.config.depth, len(ranked))
        inner = ranked.scores.get(LTR)
        base = inner[:n] if inner is not None else -np.arange(n, dtype=np.float64)
        personal = facts(ranked.items[:n], history[0], history[1]) @ self._w
        score = _standard(np.asarray(base, dtype=np.float64)) + self.config.strength * personal
        rest = score.min() - 1.0 - np.arange(len(ranked) - n, dtype=np.float64)
        full = np.concatenate([score, rest])
        mine = np.concatenate([personal, np.zeros(len(ranked) - n)])
        return ranked.with_score(PERSONAL, mine).with_score(LTR, full).sort_by(LTR)


def personal_stage(seed: int = 0, resources: Mapping[str, Any] | None = None) -> PersonalStage:
    """``rank/personal``: the fused order personalized."""
    return PersonalStage(NoopRanker(seed, resources))


def lambdamart_personal_stage(
    seed: int = 0, resources: Mapping[str, Any] | None = None
) -> PersonalStage:
    """``rank/lambdamart_personal``: ``rank/lambdamart``'s order personalized (the fused order
    when the version trained no search model)."""
    if isinstance((resources or {}).get(LAMBDAMART), SearchModel):
        return PersonalStage(lambdamart_stage(seed, resources))
    return PersonalStage(NoopRanker(seed, resources))


register_ranker("rank/personal", personal_stage)
register_ranker(f"{LAMBDAMART}_personal", lambdamart_personal_stage)
