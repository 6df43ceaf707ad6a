"""Fusion of named candidate lists into one, keeping each item's provenance.

``rrf``: weighted reciprocal-rank fusion, ``sum_s w_s / (k + rank_s(i))``. ``zscore``: the
weighted sum of each source's scores standardized per query (items a source did not return get
that source's minimum). Either way every source's own score stays on the result as a column
named after the source (NaN where it did not return the item), and ``sources`` lists every
source that returned the item, joined by ``+``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Candidates
from moodboard.data import columns as C


class FuseConfig(BaseModel):
    """How to fuse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["rrf", "zscore"] = "rrf"
    k: float = Field(default=60.0, ge=0)
    weights: dict[str, float] = Field(default_factory=dict)


class Fuser:
    """Fuses named candidate lists.

    Parameters
    ----------
    config
        Method, RRF constant and a weight per source name (default 1).
    """

    def __init__(self, config: FuseConfig | None = None) -> None:
        self.config = config or FuseConfig()

    def __call__(self, parts: Mapping[str, Candidates], k: int | None = None) -> Candidates:
        """The fused list, best first, cut to ``k`` when given."""
        parts = {n: c for n, c in parts.items() if len(c)}
        if not parts:
            return Candidates.empty()
        items = np.unique(np.concatenate([c.items for c in parts.values()]))
        fused = np.zeros(len(items))
        columns: dict[str, np.ndarray] = {}
        member = np.zeros(len(items), dtype=np.int64)  # bit b: the b-th part returned the item
        for bit, (name, cand) in enumerate(parts.items()):
            w = self.config.weights.get(name, 1.0)
            rows = np.searchsorted(items, cand.items)
            raw = cand.score(C.RETRIEVAL).astype(np.float64)
            col = np.full(len(items), np.nan)
            col[rows] = raw
            columns[name] = col
            if self.config.method == "rrf":
                fused[rows] += w / (self.config.k + np.arange(1, len(cand) + 1))
            else:
                sd = raw.std()
                z = (raw - raw.mean()) / sd if sd > 0 else np.zeros_like(raw)
                filled = np.full(len(items), z.min() if len(z) else 0.0)
                filled[rows] = z
                fused += w * filled
            member[rows] |= 1 << bit
        order = np.argsort(-fused, kind="stable")
        if k is not None:
            order = order[:k]
        names = list(parts)
        masks, which = np.unique(member[order], return_inverse=True)
        labels = np.empty(len(masks), dtype=object)  # "a+b": the parts that returned it, in order
        labels[:] = ["+".join(n for b, n in enumerate(names) if m >> b & 1) for m in masks.tolist()]
        srcs = labels[which]
        scores = {C.RETRIEVAL: fused[order], **{n: v[order] for n, v in columns.items()}}
        return Candidates(items[order], scores, srcs)


def round_robin(lists: list[Candidates], weights: np.ndarray) -> Candidates:
    """Merge ranked lists: the item at rank ``r`` of list ``j`` sits at ``(r + 1) / w_j``.

    An item in several lists takes its best position; its ``retrieval`` score is the best it
    has in any list.
    """
    best_pos: dict[int, float] = {}
    best_score: dict[int, float] = {}
    for cand, w in zip(lists, weights, strict=True):
        if len(cand) == 0 or w <= 0:
            continue
        s = cand.score(C.RETRIEVAL)
        for r, i in enumerate(cand.items.tolist()):
            pos = (r + 1) / w
            if pos < best_pos.get(i, np.inf):
                best_pos[i] = pos
            best_score[i] = max(best_score.get(i, -np.inf), float(s[r]))
    if not best_pos:
        return Candidates.empty()
    items = sorted(best_pos, key=lambda i: (best_pos[i], i))
    source = next(str(c.sources[0]) for c in lists if len(c))
    scores = np.array([best_score[i] for i in items])
    return Candidates.from_scores(items, scores, source)
