"""Near-duplicate removal: drop items whose image is a near-copy of a better-ranked one."""

from __future__ import annotations

import logging

import numpy as np

from moodboard.data import Candidates

_log = logging.getLogger(__name__)


def dedup_images(
    candidates: Candidates,
    vectors: np.ndarray | None,
    threshold: float | None,
    anchors: np.ndarray | None = None,
    limit: int | None = None,
) -> Candidates:
    """Drop items whose image is a near-duplicate of a better-ranked one (or of an anchor).

    Greedy in page order: an item is kept unless its image cosine with a kept item or an
    anchor (e.g. the product the page is about) is ``>= threshold``. Items without an image
    (an all-zero vector) are never duplicates.

    Parameters
    ----------
    candidates
        Best first.
    vectors
        Unit-norm image vectors of every catalog item (zero rows for items without one);
        None disables deduplication.
    threshold
        Cosine at or above which two images are the same; None disables deduplication.
    anchors
        Items that count as already kept.
    limit
        Stop after keeping this many (the page needs no more); None: go through all.
    """
    if vectors is None or threshold is None or len(candidates) == 0:
        return candidates if limit is None else candidates.head(limit)
    limit = len(candidates) if limit is None else min(limit, len(candidates))
    anchors = np.asarray([] if anchors is None else anchors, dtype=np.int64)
    kept = np.empty((len(anchors) + limit, vectors.shape[1]), dtype=np.float32)
    n = 0
    for a in anchors:
        v = vectors[a]
        if v.any():
            kept[n], n = v, n + 1
    keep: list[int] = []
    for j, i in enumerate(candidates.items):
        v = np.asarray(vectors[i], dtype=np.float32)
        has = bool(v.any())
        if has and n and float((kept[:n] @ v).max()) >= threshold:
            continue
        keep.append(j)
        if has:
            kept[n], n = v, n + 1
        if len(keep) >= limit:
            break
    dropped = min(len(candidates), keep[-1] + 1 if keep else 0) - len(keep)
    if dropped:
        _log.debug("removed %d near-duplicate images", dropped)
    return candidates.take(np.asarray(keep, dtype=np.int64))
