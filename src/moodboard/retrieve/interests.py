"""``user_interests``: several embeddings per user, PinnerSage style.

A user's recent engaged items are clustered in an item-embedding space (Ward agglomerative
clustering cut at a distance threshold, or k-means); the ``max_interests`` most important
clusters are kept. Each cluster is one interest: its medoid (an engaged item, robust to
outliers) retrieves its nearest items from a FAISS ``IndexFlatIP``, and the interests are
blended by their importance, the recency-weighted count of their members (``sum decay**age``,
times the action weights when given).

Item embeddings come from ``TrainingData.item_features[embedding_feature]`` when given (text or
image vectors), else they are learned: a truncated SVD of the positive PMI of item
co-occurrences within ``window`` events of each other in the sequences (item2vec's objective
solved exactly, Levy & Goldberg 2014).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.cluster.hierarchy import linkage
from scipy.cluster.vq import kmeans2
from sklearn.utils.extmath import randomized_svd

from moodboard.data import Candidates
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.retrieve.base import (
    CandidateSource,
    SourceConfig,
    TrainingData,
    allowed_except,
    check_k,
    top_k,
)
from moodboard.retrieve.baselines import window_counts

_log = logging.getLogger(__name__)

#: Weight of the popularity prior added to every score (ties, and users with no known item).
PRIOR = 1e-9


class InterestsConfig(SourceConfig):
    """Parameters of ``user_interests`` (defaults tuned on the Amazon validation targets).

    ``weighted_medoid`` picks the member closest to the others weighted by recency, so a
    cluster's query leans to what the user engaged with last (PinnerSage: unweighted).
    """

    embedding_feature: str = "embeddings"
    dim: int = Field(default=256, ge=2)
    window: int = Field(default=5, ge=1)
    eigen_power: float = Field(default=1.0, ge=0, le=1)
    max_history: int = Field(default=50, ge=1)
    max_interests: int = Field(default=5, ge=1)
    clustering: Literal["ward", "kmeans"] = "ward"
    distance_threshold: float = Field(default=1.0, gt=0)
    recency_decay: float = Field(default=0.3, gt=0, le=1)
    weighted_medoid: bool = True
    n_candidates: int = Field(default=200, ge=1)
    batch_size: int = Field(default=512, ge=1)
    seed: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class Interest:
    """One cluster of a user's engaged items.

    Attributes
    ----------
    medoid
        The member item closest to all others: the interest's query.
    members
        The member items, most recent first.
    importance
        Recency-weighted size, normalized to sum to 1 over the user's interests.
    """

    medoid: int
    members: np.ndarray
    importance: float


def cooccurrence_embeddings(
    sequences: Sequence[np.ndarray],
    n_items: int,
    dim: int,
    window: int,
    seed: int = 0,
    power: float = 1.0,
) -> np.ndarray:
    """Item vectors from the SVD of windowed co-occurrence PPMI, L2-normalized.

    Pairs ``d <= window`` events apart count ``1 / d``; context counts are smoothed by the
    power 0.75 (as word2vec's negative sampling). The vectors are ``U * S**power`` of a
    randomized truncated SVD (seeded). Items never seen get a zero vector.

    Raises
    ------
    ConfigError
        If ``dim`` is not smaller than the number of items.
    """
    if dim >= n_items:
        raise ConfigError(f"The 'dim' parameter must be < n_items ({n_items}). Got {dim}.")
    c = window_counts(sequences, n_items, window)
    if not c.nnz:
        return np.zeros((n_items, dim), dtype=np.float32)
    row = np.asarray(c.sum(1)).ravel()
    ctx = row**0.75
    c = c.tocoo()
    pmi = np.log(c.data * ctx.sum() / (row[c.row] * ctx[c.col]))
    keep = pmi > 0
    m = sp.csr_matrix((pmi[keep], (c.row[keep], c.col[keep])), (n_items, n_items))
    u, s, _ = randomized_svd(m, dim, n_iter=4, random_state=seed)
    return normalize((u * s**power).astype(np.float32))


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


class UserInterests(CandidateSource):
    """PinnerSage: cluster a user's engaged items, retrieve from each cluster's medoid.

    A query with a ``history`` (the feed) gets the top of ``score``; one with seed ``items``
    (a board) gets the neighbours of their interests (``from_items``).

    Examples
    --------
    >>> model = UserInterests(InterestsConfig(max_interests=3)).fit(data)  # doctest: +SKIP
    >>> model.interests(history)  # [Interest(medoid=..., members=..., importance=...), ...]
    >>> model.score([history])  # (1, n_items) float32  # doctest: +SKIP
    """

    kind = "user_interests"
    Config = InterestsConfig
    config: InterestsConfig
    full_ranking = True

    def _fit(self, data: TrainingData) -> None:
        """Take or learn item embeddings and index them.

        Raises
        ------
        ConfigError
            If the given embeddings do not have one row per item.
        """
        cfg, n = self.config, int(data.n_items)
        given = data.item_features.get(cfg.embedding_feature)
        if given is not None:
            emb = normalize(np.asarray(given, dtype=np.float32))
            if emb.ndim != 2 or len(emb) != n:
                raise ConfigError(
                    f"{self.name}: item_features[{cfg.embedding_feature!r}] must have shape "
                    f"({n}, dim). Got {emb.shape} instead."
                )
        else:
            emb = cooccurrence_embeddings(
                data.sequences, n, cfg.dim, cfg.window, cfg.seed, cfg.eigen_power
            )
        seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
        pop = np.bincount(np.concatenate(seqs) if seqs else np.empty(0, np.int64), minlength=n)
        self._set_state(emb, pop.astype(np.float64))
        source = "given" if given is not None else "learned"
        _log.info("%s: %d items, %d-d %s embeddings", self.name, n, emb.shape[1], source)

    def _set_state(self, embeddings: np.ndarray, popularity: np.ndarray) -> None:
        self.embeddings_ = normalize(embeddings)
        self.popularity_ = popularity
        self.n_items_ = len(embeddings)
        self._index = faiss.IndexFlatIP(self.embeddings_.shape[1])
        self._index.add(self.embeddings_)
        self._known = np.linalg.norm(self.embeddings_, axis=1) > 0
        k = min(self.config.n_candidates, self.n_items_)
        self._nbr_idx = np.full((self.n_items_, k), -1, dtype=np.int32)
        self._nbr_sim = np.zeros((self.n_items_, k), dtype=np.float32)
        self._cached = np.zeros(self.n_items_, dtype=bool)

    def neighbours(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_candidates`` nearest items of each item: (similarities, indices).

        FAISS searches each item once; its answer is kept for the next medoid that needs it
        (``n_items * n_candidates * 8`` bytes at most).
        """
        self.check_fitted()
        items = np.asarray(items, dtype=np.int64)
        todo = np.unique(items[~self._cached[items]])
        if len(todo):
            sims, idx = self._index.search(self.embeddings_[todo], self._nbr_idx.shape[1])
            self._nbr_sim[todo], self._nbr_idx[todo] = sims, idx
            self._cached[todo] = True
        return self._nbr_sim[items], self._nbr_idx[items]

    def _save(self, folder: Path) -> dict[str, Any]:
        """Write ``embeddings.npy`` and ``popularity.npy``."""
        np.save(folder / "embeddings.npy", self.embeddings_)
        np.save(folder / "popularity.npy", self.popularity_)
        return {"dim": int(self.embeddings_.shape[1])}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        """The FAISS flat index is rebuilt from the embeddings."""
        self._set_state(
            np.load(folder / "embeddings.npy", allow_pickle=False),
            np.load(folder / "popularity.npy", allow_pickle=False),
        )

    # ---------------------------------------------------------------- interests
    def interests(self, history: np.ndarray, weights: np.ndarray | None = None) -> list[Interest]:
        """The user's interests, most important first.

        ``history`` is oldest first; ``weights`` (optional, aligned) are action weights.
        Items without an embedding (unknown or never engaged in training) are ignored; a
        history with no known item has no interest.

        Raises
        ------
        NotFittedError
            If the model was not fitted or loaded.
        """
        self.check_fitted()
        cfg = self.config
        h = np.asarray(history, dtype=np.int64)[::-1]  # most recent first
        age = np.arange(len(h), dtype=np.float64)
        w = cfg.recency_decay**age
        if weights is not None:
            w = w * np.asarray(weights, dtype=np.float64)[::-1]
        ok = (h >= 0) & (h < self.n_items_) & (w > 0)
        ok[ok] = self._known[h[ok]]
        h, age, w = h[ok], age[ok], w[ok]
        if len(h) == 0:
            return []
        items, first, inv = np.unique(h, return_index=True, return_inverse=True)
        weight = np.bincount(inv, weights=w, minlength=len(items))
        order = np.argsort(first)[: cfg.max_history]  # the most recent distinct items
        items, weight, recent = items[order], weight[order], age[first[order]]
        x = self.embeddings_[items]
        labels = self._cluster(x, len(items))
        found = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            gram = x[idx] @ x[idx].T
            medoid = idx[int(np.argmax(gram @ weight[idx] if cfg.weighted_medoid else gram.sum(1)))]
            found.append((-weight[idx].sum(), recent[idx].min(), int(items[medoid]), items[idx]))
        found.sort(key=lambda f: (f[0], f[1]))
        found = found[: cfg.max_interests]
        total = -sum(f[0] for f in found)
        return [Interest(m, members, -w / total) for w, _, m, members in found]

    def _cluster(self, x: np.ndarray, n: int) -> np.ndarray:
        cfg = self.config
        if n == 1:
            return np.zeros(1, dtype=np.int64)
        if cfg.clustering == "kmeans":
            k = min(cfg.max_interests, n)
            _, labels = kmeans2(x.astype(np.float64), k, minit="++", seed=cfg.seed)
            return labels
        # Ward merge heights only grow: the clusters at the cut are the merges below it
        z = linkage(x.astype(np.float64), method="ward")
        members: dict[int, list[int]] = {i: [i] for i in range(n)}
        for step, (a, b, height, _) in enumerate(z):
            if height > cfg.distance_threshold:
                break
            members[n + step] = members.pop(int(a)) + members.pop(int(b))
        labels = np.empty(n, dtype=np.int64)
        for label, idx in enumerate(members.values()):
            labels[idx] = label
        return labels

    # ---------------------------------------------------------------- serving
    def recommend(
        self,
        history: np.ndarray,
        k: int = 100,
        weights: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> Candidates:
        """The ``k`` best items for one user (or a board's items), the history's items and
        ``exclude`` left out (and items outside the ``allowed`` mask).

        Raises
        ------
        NotFittedError
            If the model was not fitted or loaded.
        ConfigError
            If ``k`` is not a positive int.
        """
        self.check_fitted()
        k = check_k(k, self.name)
        h = np.asarray(history, dtype=np.int64)
        scores = self.score([h], None if weights is None else [weights])[0]
        mask = allowed_except(self.n_items_, h, exclude)
        idx = top_k(scores, k, mask if allowed is None else mask & allowed)
        return Candidates.from_scores(idx, scores[idx], self.name)

    def from_items(
        self,
        items: np.ndarray,
        k: int = 100,
        exclude: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
    ) -> Candidates:
        """Neighbours of the interests of a set of items (a board, latest added last).

        Like :meth:`recommend`, without the popularity prior: only items near an interest
        come back, so the list is empty when no item has an embedding.

        Raises
        ------
        NotFittedError
            If the model was not fitted or loaded.
        ConfigError
            If ``k`` is not a positive int.
        """
        seeds = np.asarray(items, dtype=np.int64).ravel()
        cand = self.recommend(seeds, k, exclude=exclude, allowed=allowed)
        return cand.take(np.flatnonzero(cand.score(C.RETRIEVAL) > PRIOR))

    def _from_seeds(self, seeds: np.ndarray, k: int, allowed: np.ndarray | None) -> Candidates:
        return self.from_items(seeds, k, allowed=allowed)

    def _score(
        self,
        histories: Sequence[np.ndarray],
        weights: Sequence[np.ndarray] | None,
        users: Sequence[str | None] | None,
    ) -> np.ndarray:
        """Scores of every item for each history, ``(n, n_items)`` float32.

        An item's score is the importance-weighted sum of its similarity to each interest's
        medoid, over the ``n_candidates`` nearest items of each medoid; other items get only
        the popularity prior (and so does a history with no known item). History items are
        not masked.

        Raises
        ------
        NotFittedError
            If the model was not fitted or loaded.
        """
        self.check_fitted()
        out = np.empty((len(histories), self.n_items_), dtype=np.float32)
        prior = PRIOR * self.popularity_ / max(self.popularity_.max(), 1.0)
        k = min(self.config.n_candidates, self.n_items_)
        for start in range(0, len(histories), self.config.batch_size):
            stop = min(start + self.config.batch_size, len(histories))
            rows, medoids, imp = [], [], []
            for r in range(start, stop):
                wr = None if weights is None else weights[r]
                for it in self.interests(histories[r], wr):
                    rows.append(r - start)
                    medoids.append(it.medoid)
                    imp.append(it.importance)
            s = np.zeros((stop - start, self.n_items_))
            if medoids:
                sims, idx = self.neighbours(np.asarray(medoids))
                flat = np.repeat(rows, k) * self.n_items_ + idx.ravel()
                contrib = (np.repeat(imp, k) * np.maximum(sims.ravel(), 0))[idx.ravel() >= 0]
                s.ravel()[:] = np.bincount(
                    flat[idx.ravel() >= 0], weights=contrib, minlength=s.size
                )
            out[start:stop] = s + np.maximum(s.max(axis=1, keepdims=True), 1e-3) * prior
        return out
