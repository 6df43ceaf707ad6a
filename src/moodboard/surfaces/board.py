"""The board surface's steps: ``prepare/board`` and ``blend/dedup`` (also visual search's).

More ideas for a board: neighbours of the board's centroids, in the board's own mix.

The board's items are clustered on their text vectors (spherical k-means, deterministic
farthest-point seeds): one cluster while the items sit close to their mean (mean cosine >=
``cohesion``), more, up to ``max_centroids``, while they do not. Each cluster's mean vector in
each source's space (text, image) queries that source; a source's lists are merged by weighted
round robin, so a cluster holding two thirds of the board gets two thirds of the top slots.
The co-engagement sources (``graph/walks``, ``user_interests``) are queried with the board's
items as a whole (what people who engaged with them also engaged with). The sources are
fused with provenance and ranked; then the page gets the board's mix back (fusion favours the
cluster the co-engagement sources agree on): each item a vector source found joins its
nearest cluster, the items only co-engagement found keep their share in a list of their own,
and the lists are merged by weighted round robin, each keeping the ranked order. Then
near-identical images are dropped (also against the board's items), and the fallback sources
fill the page. Items on the board never appear; an empty board gets popular items.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from moodboard.blend import dedup_images
from moodboard.data import Candidates, Request
from moodboard.retrieve import SourceQuery
from moodboard.retrieve.fuse import round_robin
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.related import neighbour_probes
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, SurfaceEnv
from moodboard.surfaces.search import attributes_first
from moodboard.surfaces.steps import register_blend, register_prepare

__all__ = ["blend_dedup", "cluster_board", "prepare_board", "round_robin"]

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


def _labels(env: SurfaceEnv, board: np.ndarray) -> tuple[str | None, np.ndarray]:
    """The first source with vectors and the board items' cluster labels in its space."""
    for name in env.config.sources:
        vectors = env.item_vectors(name)
        if vectors is not None:
            x = np.asarray(vectors[board], dtype=np.float32)
            return name, cluster_board(x, env.config.max_centroids, env.config.cohesion)
    return None, np.zeros(len(board), dtype=np.int64)


def keep_mix(
    cand: Candidates,
    vectors: np.ndarray,
    centroids: np.ndarray,
    weights: np.ndarray,
    from_vectors: frozenset[str] = frozenset(),
    need: int | None = None,
) -> Candidates:
    """The ranked candidates reordered so each cluster of the board gets its share of the top
    slots: an item a vector source found (``from_vectors``; all, when empty) joins its
    nearest centroid; the others (found by co-engagement only, or without a vector) form a
    list of their own, weighted by their share of the first ``need``; each list keeps the
    ranked order, and the lists are merged by weighted round robin (the item at rank ``r``
    of list ``j`` sits at ``(r + 1) / w_j``).
    """
    if len(centroids) < 2 or len(cand) == 0:
        return cand
    x = np.asarray(vectors[cand.items], dtype=np.float32)
    own = ~x.any(axis=1)
    if from_vectors:
        own |= np.array([not (set(str(s).split("+")) & from_vectors) for s in cand.sources])
    share = float(own[: need or len(cand)].mean())
    group = np.where(own, len(centroids), np.argmax(x @ centroids.T, axis=1))
    w = np.append(np.asarray(weights, dtype=np.float64) * (1.0 - share), share)
    rank = np.zeros(len(cand))
    for j in np.unique(group):
        rank[group == j] = np.arange(1, int((group == j).sum()) + 1)
    order = np.lexsort((np.arange(len(cand)), rank / np.maximum(w[group], 1e-9)))
    return cand.take(order)


def _centroids(
    vectors: np.ndarray, board: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster's unit mean vector in one source's space and its share of the board."""
    centroids, weights = [], []
    for c in range(int(labels.max()) + 1):
        x = np.asarray(vectors[board[labels == c]], dtype=np.float32)
        x = x[np.any(x, axis=1)]  # members without this vector (no image)
        if len(x):
            centroids.append(_unit(x.mean(0)))
            weights.append(float((labels == c).mean()))
    dim = vectors.shape[1]
    stacked = np.stack(centroids) if centroids else np.empty((0, dim), np.float32)
    return stacked, np.asarray(weights)


@register_prepare("prepare/board")
def prepare_board(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Cluster the board's items (``request.items``; unknown ids are ignored): the vector
    sources are asked with each cluster's centroid (merged in the board's mix), the others
    with the board's items; an empty board asks nothing (the fallback fills the page)."""
    board = env.indices(request.items)
    probes: dict[str, Probe] = {}
    timings: dict[str, float] = {}
    if len(board):
        t0 = time.perf_counter()
        space, labels = _labels(env, board)
        timings["cluster"] = (time.perf_counter() - t0) * 1e3
        query = SourceQuery(items=board, exclude=board)
        for name in env.config.sources:
            vectors = env.item_vectors(name)
            if vectors is not None:
                probes[name] = Probe(query, *_centroids(vectors, board, labels))
        co_engaged = neighbour_probes(env, board, board)
        probes |= {n: p for n, p in co_engaged.items() if p.query.vector is None}
    context: dict = {"anchors": board}
    if len(board) and space is not None:  # the page keeps the board's mix (``keep_mix``)
        context["mix"] = (space, *_centroids(env.item_vectors(space), board, labels))
    return Prepared(
        probes,
        max(env.config.per_source, need),
        exclude=board,
        rank=rank_query(request, env.resources, context=context),
        context=context,
        timings_ms=timings,
    )


@register_blend("blend/dedup")
def blend_dedup(retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv) -> Candidates:
    """A board's mix kept on the page (``keep_mix``: after fusion and ranking, which mix the
    clusters' lists again), then near-identical images dropped (cosine >= ``dedup_threshold``
    in ``dedup_source``), keeping the better-ranked one; the request's ``anchors`` (a board's
    items) count as kept. The attribute words of a composed visual query ("like this, but
    red") then put the items with every named value first (``search.attributes_first``)."""
    cfg = env.config
    dedup = env.item_vectors(cfg.dedup_source)
    anchors = prepared.context.get("anchors")
    cand = retrieved.main
    mix = prepared.context.get("mix")  # a board's clusters: each gets its share of the page
    if mix is not None:
        spaces = frozenset(n for n in cfg.sources if env.item_vectors(n) is not None)
        cand = keep_mix(cand, env.item_vectors(mix[0]), mix[1], mix[2], spaces, need)
    cand = dedup_images(cand, dedup, cfg.dedup_threshold, anchors, need)
    return attributes_first(cand, retrieved, prepared, env)  # a composed visual query's words
