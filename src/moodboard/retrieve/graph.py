"""The item-board graph of ``graph/walks``: CSR helpers, degree caps, query items, hashing."""

from __future__ import annotations

import numpy as np

U64 = np.uint64
GOLDEN = U64(0x9E3779B97F4A7C15)
_M1, _M2 = U64(0xBF58476D1CE4E5B9), U64(0x94D049BB133111EB)
BITS = 21  # bits of the step hash used by each of the three draws (restart, board, item)
MASK = U64((1 << BITS) - 1)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer: a uint64 array hashed element-wise (wraps on purpose)."""
    z = np.asarray(x, dtype=U64) + GOLDEN
    z = (z ^ (z >> U64(30))) * _M1
    z = (z ^ (z >> U64(27))) * _M2
    return z ^ (z >> U64(31))


def query_items(
    history: np.ndarray, weights: np.ndarray | None, n: int, decay: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` most recent distinct items of a history and their weights.

    An item's weight is ``decay ** age`` summed over its occurrences (age 0 = the last event),
    times the event's action weight when ``weights`` is given.
    """
    h = np.asarray(history, dtype=np.int64)
    if len(h) == 0:
        return np.empty(0, np.int64), np.empty(0)
    age = np.arange(len(h) - 1, -1, -1, dtype=np.float64)
    w = decay**age * (1.0 if weights is None else np.asarray(weights, dtype=np.float64))
    items, inv = np.unique(h, return_inverse=True)
    total = np.bincount(inv, weights=w, minlength=len(items))
    last = np.full(len(items), np.inf)
    np.minimum.at(last, inv, age)
    order = np.argsort(last, kind="stable")[:n]
    return items[order], total[order]


def csr_arrays(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return ptr, cols[order].astype(np.int32)


def cap_degree(groups: np.ndarray, cap: int | None, *keys: np.ndarray) -> np.ndarray:
    """Mask keeping the ``cap`` edges of each group that sort first by ``keys`` (primary first)."""
    if cap is None:
        return np.ones(len(groups), dtype=bool)
    order = np.lexsort((*keys[::-1], groups))
    g = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    pos = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    keep = np.zeros(len(g), dtype=bool)
    keep[order] = pos < cap
    return keep
