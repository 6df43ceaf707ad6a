"""More ideas for a board: neighbours of the board's centroids, in the board's own mix.

The board's items are clustered on their text vectors (spherical k-means, deterministic
farthest-point seeds): one cluster while the items sit close to their mean (mean cosine >=
``cohesion``), more, up to ``max_centroids``, while they do not. Each cluster's mean vector in
each source's space (text, image) queries that source; a source's lists are merged by weighted
round robin, so a cluster holding two thirds of the board gets two thirds of the top slots.
The co-engagement sources (``graph/walks``, ``user_interests``) are queried with the board's
items as a whole (what people who engaged with them also engaged with). The sources are
fused with provenance, near-identical images are dropped (also against the board's items),
and the fallback sources fill the page. Items on the board never appear; an
empty board gets popular items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import numpy as np

from moodboard.config import BoardConfig
from moodboard.data import Candidates, Catalog
from moodboard.data import columns as C
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.surfaces.base import (
    SurfaceResult,
    check_items,
    check_k,
    co_engaged,
    dedup_images,
    fill_page,
    item_vectors,
)

_log = logging.getLogger(__name__)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def cluster_board(
    x: np.ndarray, max_centroids: int = 3, cohesion: float = 0.75, iterations: int = 10
) -> np.ndarray:
    """Cluster labels (0..c-1) of a board's unit vectors, with as few clusters as cohesive.

    ``c`` grows from 1 until every item's mean cosine to its cluster's centroid reaches
    ``cohesion`` or ``c == max_centroids``. Seeds are farthest-point (the item least like the
    mean first), so the result is deterministic.
    """
    n = len(x)
    labels = np.zeros(n, dtype=np.int64)
    if n <= 1:
        return labels
    for c in range(1, min(max_centroids, n) + 1):
        seeds = [int(np.argmin(x @ _unit(x.mean(0))))]
        while len(seeds) < c:
            seeds.append(int(np.argmin((x @ x[seeds].T).max(1))))
        centroids = x[seeds]
        for _ in range(iterations):
            labels = np.argmax(x @ centroids.T, axis=1)
            new = np.stack(
                [
                    _unit(x[labels == j].mean(0)) if (labels == j).any() else centroids[j]
                    for j in range(c)
                ]
            )
            if np.allclose(new, centroids):
                break
            centroids = new
        fit = float(np.mean(np.einsum("ij,ij->i", x, centroids[labels])))
        if fit >= cohesion:
            break
    _, labels = np.unique(labels, return_inverse=True)  # no empty cluster ids
    return labels.astype(np.int64)


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


class BoardChain:
    """More ideas for a board.

    Parameters
    ----------
    catalog
        The items.
    sources
        Fitted sources by name: those of ``config.sources`` with item vectors
        (``item_vectors()``) are queried with the board's centroids, the others
        (``graph/walks``, ``user_interests``) with the board's items.
    config
        Source names, clustering, fusion, deduplication and fallback.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Mapping[str, CandidateSource],
        config: BoardConfig | None = None,
    ) -> None:
        self.catalog = catalog
        self.sources = dict(sources)
        self.config = config or BoardConfig()
        self.fuser = Fuser(self.config.fuse)

    def _labels(self, items: np.ndarray) -> np.ndarray:
        """Cluster labels of the board's items, on the first source with vectors."""
        for name in self.config.sources:
            vectors = item_vectors(self.sources, name)
            if vectors is not None:
                x = np.asarray(vectors[items], dtype=np.float32)
                return cluster_board(x, self.config.max_centroids, self.config.cohesion)
        return np.zeros(len(items), dtype=np.int64)

    def _cluster_lists(
        self, name: str, vectors: np.ndarray, board: np.ndarray, labels: np.ndarray, k: int
    ) -> tuple[list[Candidates], np.ndarray]:
        """Each cluster's neighbours in one source (one batched search when it can) and weight."""
        centroids, weights = [], []
        for c in range(int(labels.max()) + 1):
            x = np.asarray(vectors[board[labels == c]], dtype=np.float32)
            x = x[np.any(x, axis=1)]  # members without this vector (no image)
            if len(x):
                centroids.append(_unit(x.mean(0)))
                weights.append(float((labels == c).mean()))
        source, k = self.sources[name], max(self.config.per_source, k)
        query = SourceQuery(items=board, exclude=board)
        lists = source.search_many(query, np.stack(centroids), k) if centroids else []
        return lists, np.asarray(weights)

    def __call__(self, items: np.ndarray, k: int = 24) -> SurfaceResult:
        """Ideas for a board holding ``items``, in page order.

        Parameters
        ----------
        items
            The board's item indices (any order; duplicates are ignored).
        k
            The page size.

        Returns
        -------
        SurfaceResult
            Up to ``k`` items not on the board (fewer only when the catalog has fewer);
            popular items for an empty board.

        Raises
        ------
        NotFoundError
            If an index is not in the catalog.
        ConfigError
            If ``k`` is not an int >= 1.
        """
        k = min(check_k(k, "BoardChain"), max(1, len(self.catalog)))  # never past the catalog
        board = check_items(items, len(self.catalog), "items")
        cfg = self.config
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        parts: dict[str, Candidates] = {}
        if len(board):
            labels = self._labels(board)
            t["cluster"] = (time.perf_counter() - t0) * 1e3
            for name in cfg.sources:
                vectors = item_vectors(self.sources, name)
                if vectors is None:
                    continue
                t1 = time.perf_counter()
                lists, weights = self._cluster_lists(name, vectors, board, labels, k)
                if lists:
                    parts[name] = round_robin(lists, weights)
                t[name] = (time.perf_counter() - t1) * 1e3
            n = max(cfg.per_source, k)
            parts |= co_engaged(self.sources, cfg.sources, board, n, board, t)
        t1 = time.perf_counter()
        fused = self.fuser(parts)
        dedup = item_vectors(self.sources, cfg.dedup_source)
        fused = dedup_images(fused, dedup, cfg.dedup_threshold, board, k)
        page = fill_page(fused, k, self.catalog, self.sources, cfg.fallback, exclude=board)
        t["fuse"] = (time.perf_counter() - t1) * 1e3
        t["total"] = (time.perf_counter() - t0) * 1e3
        return SurfaceResult(page.head(k), t)
