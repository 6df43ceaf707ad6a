"""The query-item graph of related searches: queries linked to the items engaged from their
results, and random walks with restart on it (Pinterest's term-query graph, Pixie's walks).

A query node links to the items clicked, saved, carted or bought from its search results,
weighted by how strongly (the label grades of ``pipelines.labels``); a walk goes query ->
item -> query, each hop drawn in proportion to the edge weights, and jumps back to a seed
query with probability ``restart`` before each hop. Queries visited often are related: the
same items satisfied both. Its random numbers are a counter-based hash of (seed, walker, step)
(``retrieve.graph.mix64``), so the answer is the same whatever else the server did before.

Saved as open formats: ``queries.json`` (the normalized query strings, their search counts and
the catalog size) and ``ptr.npy``, ``items.npy``, ``weights.npy`` (the query -> item CSR).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from moodboard.errors import InputError
from moodboard.retrieve.graph import BITS, MASK, U64, mix64
from moodboard.understand.normalize import normalize_text

_log = logging.getLogger(__name__)

FORMAT_VERSION = 1
QUERIES_FILE = "queries.json"
_ARRAYS = ("ptr", "items", "weights")


def _stem(word: str) -> str:
    """A word without its plural ending ("dresses", "dress" -> "dress"; "watches" -> "watch";
    "shirts" -> "shirt")."""
    if len(word) > 4 and word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def query_key(text: str) -> tuple[str, ...]:
    """What makes two queries near-duplicates: their words, sorted, without a plural ``s``
    ("red shirts" and "shirt red" share a key)."""
    return tuple(sorted({_stem(w) for w in normalize_text(text).split()}))


class QueryGraph:
    """Queries, the items engaged from their results, and walks between them.

    Parameters
    ----------
    queries
        Normalized query strings, one per node.
    ptr, items, weights
        The query -> item edges as CSR arrays (``items[ptr[q]:ptr[q + 1]]``).
    n_items
        The catalog size the item indices refer to.
    counts
        How often each query was searched (default 1 each).
    """

    def __init__(
        self,
        queries: Sequence[str],
        ptr: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        n_items: int,
        counts: Sequence[int] | None = None,
    ) -> None:
        self.queries = list(queries)
        self.ptr = np.asarray(ptr, dtype=np.int64)
        self.items = np.asarray(items, dtype=np.int32)
        self.weights = np.asarray(weights, dtype=np.float32)
        self.n_items = int(n_items)
        self.counts = np.ones(len(self.queries), np.int64) if counts is None else np.asarray(counts)
        ok = len(self.ptr) == len(self.queries) + 1 and self.ptr[-1] == len(self.items)
        if not ok or len(self.items) != len(self.weights) or len(self.counts) != len(self.queries):
            raise InputError("The arrays of a QueryGraph must align with its queries: rebuild.")
        if len(self.items) and (self.items.min() < 0 or self.items.max() >= self.n_items):
            raise InputError("A QueryGraph names items outside its catalog: rebuild.")
        self.index: dict[tuple[str, ...], int] = {}
        for i, q in enumerate(self.queries):  # the most engaged of near-duplicates
            self.index.setdefault(query_key(q), i)

    def __len__(self) -> int:
        return len(self.queries)

    @classmethod
    def from_edges(
        cls,
        queries: Sequence[str],
        items: np.ndarray,
        weights: np.ndarray,
        n_items: int,
        *,
        max_queries: int = 50_000,
        max_items: int = 200,
        max_chars: int = 100,
    ) -> QueryGraph:
        """The graph of engagement edges (one per engaged result: its raw query, item index
        and weight): queries normalized, duplicate edges summed, the ``max_queries`` most
        engaged queries kept with their ``max_items`` heaviest items each."""
        norm = [normalize_text(q or "")[:max_chars].strip() for q in queries]
        keep = np.array([bool(q) for q in norm], dtype=bool) & (np.asarray(items) >= 0)
        names, qi = np.unique(np.asarray(norm, dtype=object)[keep], return_inverse=True)
        m = sp.coo_matrix(
            (np.asarray(weights, np.float64)[keep], (qi, np.asarray(items)[keep])),
            shape=(len(names), n_items),
        ).tocsr()
        m.sum_duplicates()
        searched = np.bincount(qi, minlength=len(names))
        total = np.asarray(m.sum(axis=1)).ravel()
        top = np.lexsort((names.astype(str), -total))[:max_queries]
        m = m[top]
        rows, ptr = [], [0]
        for r in range(m.shape[0]):
            lo, hi = m.indptr[r], m.indptr[r + 1]
            order = np.lexsort((m.indices[lo:hi], -m.data[lo:hi]))[:max_items]
            rows.append((m.indices[lo:hi][order], m.data[lo:hi][order]))
            ptr.append(ptr[-1] + len(order))
        cat = lambda j: np.concatenate([r[j] for r in rows]) if rows else np.empty(0)  # noqa: E731
        return cls(
            [str(q) for q in names[top]], np.asarray(ptr), cat(0), cat(1), n_items, searched[top]
        )

    def save(self, folder: Path) -> None:
        """Write ``queries.json`` and the CSR arrays into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "n_items": self.n_items,
            "queries": self.queries,
            "counts": self.counts.tolist(),
        }
        (folder / QUERIES_FILE).write_text(json.dumps(meta, ensure_ascii=False))
        for name in _ARRAYS:
            np.save(folder / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> QueryGraph:
        """Read a saved graph.

        Raises
        ------
        InputError
            If its files are missing, unreadable or inconsistent.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / QUERIES_FILE).read_text())
            arrays = [np.load(folder / f"{n}.npy", allow_pickle=False) for n in _ARRAYS]
            return cls(meta["queries"], *arrays, meta["n_items"], meta["counts"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{folder} is not a readable query graph ({exc}): rebuild.") from exc

    @cached_property
    def _by_item(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The item -> query edges (CSR: ptr, queries, weights)."""
        m = sp.csr_matrix((self.weights, self.items, self.ptr), (len(self), self.n_items))
        t = m.T.tocsr()
        t.sort_indices()
        return t.indptr.astype(np.int64), t.indices.astype(np.int32), t.data

    @cached_property
    def _terms(self) -> dict[str, np.ndarray]:
        """Each word (``query_key``'s form) -> the queries holding it."""
        by: dict[str, list[int]] = {}
        for i, q in enumerate(self.queries):
            for w in query_key(q):
                by.setdefault(w, []).append(i)
        return {w: np.asarray(v, dtype=np.int64) for w, v in by.items()}

    def seeds(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """The nodes a walk for ``query`` starts from, with weights: the query's own node when
        the log has it (or a near-duplicate: ``query_key``), else the queries sharing its
        words (weighted by the share of the query's words they hold)."""
        key = query_key(query)
        if key in self.index:
            return np.array([self.index[key]]), np.ones(1)
        words = set(key)
        hits = [self._terms[w] for w in words if w in self._terms]
        if not hits:
            return np.empty(0, np.int64), np.empty(0)
        nodes, shared = np.unique(np.concatenate(hits), return_counts=True)
        return nodes, shared / len(words)

    def walk(
        self, seeds: np.ndarray, weights: np.ndarray, walkers: int, steps: int, restart: float,
        seed: int = 0,
    ) -> np.ndarray:  # fmt: skip
        """Visits of every query node by ``walkers`` walks of ``steps`` query -> item -> query
        hops with restart, the walkers shared among ``seeds`` by ``weights`` (a float array
        of one count per query; seed nodes count their visits too)."""
        visits = np.zeros(len(self))
        if len(seeds) == 0 or len(self.items) == 0:
            return visits
        share = np.asarray(weights, np.float64) / np.sum(weights)
        n = np.maximum(np.rint(share * walkers), 1).astype(np.int64)
        origin = np.repeat(np.asarray(seeds, np.int64), n)
        key = mix64(mix64(np.full(len(origin), seed, U64)) ^ np.arange(len(origin), dtype=U64))
        cur = origin.copy()
        iptr, iq, iw = self._by_item
        qcum, icum = np.cumsum(self.weights, dtype=np.float64), np.cumsum(iw, dtype=np.float64)
        threshold = U64(int(restart * (1 << BITS)))
        for step in range(steps):
            h = mix64(key + U64(step + 1))
            if step:
                cur = np.where((h & MASK) < threshold, origin, cur)
            item = _pick(self.ptr, self.items, qcum, cur, _unit(h >> U64(BITS)))
            ok = item >= 0
            nxt = _pick(iptr, iq, icum, np.where(ok, item, 0), _unit(h >> U64(2 * BITS)))
            cur = np.where(ok & (nxt >= 0), nxt, origin)
            np.add.at(visits, cur[ok], 1.0)
        return visits


def _unit(h: np.ndarray) -> np.ndarray:
    """``BITS`` bits of a hash as a float in [0, 1)."""
    return (h & MASK).astype(np.float64) / float(1 << BITS)


def _pick(
    ptr: np.ndarray, cols: np.ndarray, cum: np.ndarray, rows: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """One neighbour of each row, drawn in proportion to the edge weights (``cum``: their
    running sum in CSR order); -1 for a row without edges."""
    lo, hi = ptr[rows], ptr[rows + 1]
    base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
    top = np.where(hi > 0, cum[np.maximum(hi - 1, 0)], 0.0)
    at = np.searchsorted(cum, base + u * (top - base), side="right")
    at = np.clip(at, lo, np.maximum(hi - 1, lo))
    return np.where(hi > lo, cols[np.minimum(at, len(cols) - 1)], -1)
