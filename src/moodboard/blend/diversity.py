"""Diversity: re-order the head of a page so it does not show the same thing twice.

Two greedy re-rankers over item embeddings, both trading relevance (the ``utility`` column,
min-max scaled to ``[0, 1]`` over the candidates) against redundancy with one ``strength`` in
``[0, 1]``; with strength 0 the page is the utility order exactly:

* ``MMR`` (maximal marginal relevance, Carbonell & Goldstein 1998): the next item maximizes
  ``(1 - strength) * relevance - strength * max cosine to the items already picked``.
* ``DPP`` (greedy MAP inference of a determinantal point process, Chen, Zhang & Zhou 2018):
  the kernel ``L = diag(q) S diag(q)`` with ``S`` the cosine similarities and
  ``q = exp(theta / (2 (1 - theta)) * relevance)``, ``theta = 1 - strength``; the greedy
  step maximizes ``log det L_Y`` through an incremental Cholesky factor, i.e. the next item
  maximizes ``(1 - strength) * relevance + strength * log d_i^2`` where ``d_i^2`` is the
  part of its embedding not spanned by the items picked (1: orthogonal, 0: a duplicate).

Both pick the first ``depth`` positions (the visible page) among the first ``window``
candidates in utility order; the other candidates follow in utility order. Relevance is scaled
over the window. Items without an embedding (a zero row) count as similar to nothing.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field

from moodboard.blend._base import BlendConfig, rows_of
from moodboard.data import Candidates
from moodboard.data import columns as C

#: ``log d^2`` of an item the picked ones span (a duplicate) is clamped to ``log(_EPS)``.
_EPS = 1e-6


class DiversityConfig(BlendConfig):
    """The relevance-diversity trade-off of ``MMR`` and ``DPP``.

    Attributes
    ----------
    strength
        0: the utility order; 1: diversity only (the first item is still the best one).
    depth
        How many leading positions the re-ranker picks; the rest follow in utility order.
    window
        The re-ranker picks among this many candidates, the first in utility order (0: all).
        The rank stage scores its first 300 (``rank.multihead`` serving depth); the fused
        candidates behind them (about 700 more on the demo feed) carry no head score, and
        reading them too tripled the stage's time (2.8 ms a page) for picks it never made.
    score
        The relevance column.
    """

    strength: float = Field(default=0.3, ge=0, le=1)
    depth: int = Field(default=50, ge=1, le=5_000)
    window: int = Field(default=300, ge=0, le=100_000)
    score: str = C.UTILITY


def _prepare(
    cand: Candidates, embeddings: np.ndarray, score: str, owner: str
) -> tuple[Candidates, np.ndarray, np.ndarray]:
    """The candidates in utility order, their relevance in ``[0, 1]`` and unit embeddings."""
    cand = cand.sort_by(score)
    rel = cand.score(score).astype(np.float64)
    finite = np.isfinite(rel)
    rel = np.where(finite, rel, rel[finite].min() if finite.any() else 0.0)
    span = rel.max() - rel.min() if len(rel) else 0.0
    rel = (rel - rel.min()) / span if span > 0 else np.zeros_like(rel)
    emb = rows_of(embeddings, cand, "embeddings", owner).astype(np.float32, copy=False)
    if emb.ndim != 2:
        raise ValueError(f"The 'embeddings' of {owner} must be a 2-d matrix. Got {emb.ndim}-d.")
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
    return cand, rel, emb


class _Diversifier:
    """The shared template: utility order, then ``_pick`` chooses the first ``depth`` rows.

    Parameters
    ----------
    config
        Strength, depth and relevance column; ``DiversityConfig()`` when None.
    """

    def __init__(self, config: DiversityConfig | None = None) -> None:
        self.config = config or DiversityConfig()

    def fit(self) -> Self:
        """Nothing to learn; returns ``self``."""
        return self

    def __call__(self, cand: Candidates, embeddings: np.ndarray) -> Candidates:
        """``cand`` re-ordered: the first ``depth`` by the re-ranker, the rest by utility.

        Parameters
        ----------
        cand
            Candidates with the relevance column (``utility``).
        embeddings
            ``(n_items, d)`` item embeddings of the whole catalog (rows by item index).

        Raises
        ------
        KeyError
            If the relevance column is missing.
        ConfigError
            If ``embeddings`` has no row for a candidate.
        """
        cfg = self.config
        cand = cand.sort_by(cfg.score)
        n = len(cand)
        w = min(cfg.window or n, n)
        _, rel, emb = _prepare(cand.head(w), embeddings, cfg.score, type(self).__name__)
        if cfg.strength == 0 or w < 2:
            return cand
        gain = (1 - cfg.strength) * rel  # a picked item's gain becomes -inf
        picked = np.asarray(self._pick(gain, emb, min(cfg.depth, w)), dtype=np.int64)
        rest = np.ones(n, dtype=bool)
        rest[picked] = False
        return cand.take(np.concatenate([picked, np.flatnonzero(rest)]))

    def _pick(self, gain: np.ndarray, emb: np.ndarray, depth: int) -> list[int]:
        """The rows of the first ``depth`` positions, in order."""
        raise NotImplementedError


class MMR(_Diversifier):
    """Maximal marginal relevance over item embeddings (see the module docstring).

    Parameters
    ----------
    config
        Strength, depth and relevance column; ``DiversityConfig()`` when None.
    """

    def _pick(self, gain: np.ndarray, emb: np.ndarray, depth: int) -> list[int]:
        strength = self.config.strength
        redundancy = np.zeros(len(gain))  # the largest cosine to a picked item (negative: 0)
        picked: list[int] = []
        for _ in range(depth):
            j = int(np.argmax(gain - strength * redundancy))
            picked.append(j)
            gain[j] = -np.inf
            np.maximum(redundancy, emb @ emb[j], out=redundancy)
        return picked


class DPP(_Diversifier):
    """Greedy MAP inference of a DPP with the fast Cholesky update (Chen et al. 2018).

    ``O(depth^2 * n + depth * n * d)`` for ``n`` candidates of dimension ``d``: each step adds
    a row to the Cholesky factor of the picked items and updates every candidate's residual
    ``d_i^2`` at once. When the picked items span every remaining embedding (more picks than
    dimensions, or duplicates only) the rest of the depth follows utility order.

    Parameters
    ----------
    config
        Strength, depth and relevance column; ``DiversityConfig()`` when None.
    """

    def _pick(self, gain: np.ndarray, emb: np.ndarray, depth: int) -> list[int]:
        strength, n = self.config.strength, len(gain)
        chol = np.zeros((depth, n))
        d2 = np.ones(n)  # zero rows (no embedding) keep 1: similar to nothing
        score = gain.copy()  # log d^2 = 0 before the first pick
        logd2 = np.empty(n)
        picked: list[int] = []
        for t in range(depth):
            j = int(np.argmax(score))
            picked.append(j)
            gain[j] = -np.inf
            if d2[j] < _EPS:  # the rest is spanned: no more diversity to gain
                break
            e = emb @ emb[j] - chol[:t, j] @ chol[:t]
            e /= np.sqrt(d2[j])
            chol[t] = e
            d2 -= e * e
            np.log(np.maximum(d2, _EPS, out=logd2), out=logd2)
            np.add(gain, strength * logd2, out=score)
        return picked
