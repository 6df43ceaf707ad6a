"""``dense/*`` and ``visual/*``: nearest neighbours by inner product on FAISS.

Exact search under ``exact_below`` items, HNSW above it, behind the same API. Filters run inside
the search (an ``IDSelectorBitmap`` for HNSW, a mask for exact search), so a filtered query still
gets ``k`` results when ``k`` items pass.

Exact search of a few queries (a search and its probes) is the stored ``IndexFlatIP``'s own
search, one query at a time on the calling thread with the filter as an ``IDSelectorBitmap``;
more queries (a batch evaluation) are one matrix product with the item vectors and a top-k on
torch's threads. In the served search chain on the 9,583-item demo catalog, the dense stage
took 2.6 ms this way against 6.9 ms with every query through torch (``bench/search.py``
queries, 2026-12-07): torch's product of a few query rows with the transposed items does not
parallelize, and its thread pool wakes up cold after the text encoder's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pydantic import Field

from moodboard.data import Candidates
from moodboard.errors import ConfigError
from moodboard.retrieve.base import (
    CandidateSource,
    SourceConfig,
    SourceQuery,
    TrainingData,
    check_k,
)

_log = logging.getLogger(__name__)


class DenseConfig(SourceConfig):
    """FAISS index parameters (``[retrieve.dense]``) and the item feature indexed.

    ``feature`` names the ``TrainingData.item_features`` entry holding one vector per item
    (``"text"``, ``"image"``). Exact search under ``exact_below`` items, HNSW above it.
    """

    feature: str = "text"

    exact_below: int = Field(default=50_000, ge=1)
    hnsw_m: int = Field(default=32, ge=4)
    ef_construction: int = Field(default=80, ge=8)
    ef_search: int = Field(default=128, ge=8)


def _as_matrix(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float32)))


#: Queries per block of an exact search: bounds the score matrix to 256 x n_items floats.
_BLOCK = 256
#: Most queries an exact search answers one by one with FAISS; more go through torch.
_FEW = 4


def _selector(allowed: np.ndarray) -> tuple[faiss.IDSelectorBitmap, np.ndarray]:
    """A FAISS selector letting through the items ``allowed`` marks, and the bitmap it points
    into: the caller keeps both alive until FAISS returns."""
    bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
    return faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits)), bits


def _flat_top_k(
    index: faiss.IndexFlatIP, queries: np.ndarray, k: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``_exact_top_k``'s answer from the flat index itself, one query at a time."""
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    idx = np.full((len(queries), k), -1, dtype=np.int64)
    for r in range(len(queries)):
        mask = None if allowed is None else (allowed[r] if allowed.ndim == 2 else allowed)
        if mask is None:
            s, i = index.search(queries[r : r + 1], k)
        else:
            sel, bits = _selector(mask)
            params = faiss.SearchParameters()
            params.sel = sel
            s, i = index.search(queries[r : r + 1], k, params=params)
            del sel, bits  # both kept alive until FAISS returned, on purpose
        keep = i[0] >= 0
        n = int(keep.sum())
        scores[r, :n], idx[r, :n] = s[0][keep], i[0][keep]
    return scores, idx


def _exact_top_k(
    items: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``IndexFlatIP.search``'s result on torch's CPU threads: the ``k`` best inner products per
    query, best first, index -1 (score -inf) past the items ``allowed`` lets through (one mask
    for all queries, or one row per query).

    Torch, not numpy: the text encoder runs on torch's OpenMP threads, and a second BLAS
    thread pool spinning next to them made the whole search chain 5x slower on 2 cores.
    """
    import torch

    bank = torch.from_numpy(items)
    blocked = None if allowed is None else torch.from_numpy(~allowed)
    per_query = allowed is not None and allowed.ndim == 2
    scores = np.empty((len(queries), k), dtype=np.float32)
    idx = np.empty((len(queries), k), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(queries), _BLOCK):
            # items x queries, read transposed: a few queries' product parallelizes this way
            block = (bank @ torch.from_numpy(queries[start : start + _BLOCK]).T).T
            if blocked is not None:
                block.masked_fill_(
                    blocked[start : start + _BLOCK] if per_query else blocked, -torch.inf
                )
            top = torch.topk(block, k, dim=1)
            scores[start : start + _BLOCK] = top.values.numpy()
            idx[start : start + _BLOCK] = top.indices.numpy()
    idx[~np.isfinite(scores)] = -1
    return scores, idx


def _exact(
    index: faiss.IndexFlatIP,
    items: np.ndarray,
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top ``k``: FAISS one query at a time for a few queries, else torch."""
    if len(queries) <= _FEW:
        return _flat_top_k(index, queries, k, allowed)
    return _exact_top_k(items, queries, k, allowed)


class DenseSource(CandidateSource):
    """Inner-product search over item vectors (L2-normalized: cosine similarity)."""

    kind = "dense/text"
    Config = DenseConfig
    config: DenseConfig

    def _fit(self, data: TrainingData) -> None:
        vectors = data.item_features.get(self.config.feature)
        if vectors is None or len(vectors) != data.n_items:  # type: ignore[arg-type]
            raise ConfigError(
                f"{self.name} needs one vector per catalog item: TrainingData.item_features"
                f"[{self.config.feature!r}] of shape ({data.n_items}, dim)."
            )
        self._set_index(_as_matrix(vectors))  # type: ignore[arg-type]

    def _set_index(self, x: np.ndarray) -> None:
        d = x.shape[1]
        if len(x) < self.config.exact_below:
            index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexHNSWFlat(d, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.config.ef_construction
        index.add(x)
        self._index = index
        self.vectors = x
        _log.info("%s: %s over %d x %d", self.name, type(index).__name__, len(x), d)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        self.check_fitted()
        return int(self._index.d)

    @property
    def index_type(self) -> str:
        """The FAISS index class in use (``IndexFlatIP`` or ``IndexHNSWFlat``)."""
        self.check_fitted()
        return type(self._index).__name__

    def item_vectors(self) -> np.ndarray:
        """The indexed item vectors ``(n_items, dim)``."""
        self.check_fitted()
        return self.vectors

    def _save(self, folder: Path) -> dict[str, Any]:
        """Write the FAISS index and the vectors (.npy)."""
        faiss.write_index(self._index, str(folder / "index.faiss"))
        np.save(folder / "vectors.npy", self.vectors)
        return {"index": self.index_type, "dim": self.dim}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self._index = faiss.read_index(str(folder / "index.faiss"))
        self.vectors = np.load(folder / "vectors.npy", allow_pickle=False)

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batch search: (scores, indices), -1 where fewer than k items pass.

        Thread-safe: the filter bitmap lives in this call's frame until FAISS returns.
        """
        self.check_fitted()
        k = max(1, min(int(k), self._index.ntotal))  # FAISS allocates n x k: never past the index
        vectors = _as_matrix(vectors)
        if not isinstance(self._index, faiss.IndexHNSW):
            return _exact(self._index, self.vectors, vectors, k, allowed)
        params = faiss.SearchParametersHNSW()
        params.efSearch = self.config.ef_search
        sel = bits = None
        if allowed is not None:
            sel, bits = _selector(allowed)
            params.sel = sel
        out = self._index.search(vectors, k, params=params)
        del sel, bits  # both kept alive until FAISS returned, on purpose
        return out

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        if query.vector is None:
            return Candidates.empty()
        if query.vector.shape[-1] != self._index.d:
            raise ConfigError(
                f"{self.name} expects {self._index.d}-d query vectors. "
                f"Got {query.vector.shape[-1]}-d instead."
            )
        scores, idx = self.search(query.vector, k, allowed)
        keep = idx[0] >= 0
        return Candidates.from_scores(idx[0][keep], scores[0][keep], self.name)

    def batch(self, queries: Sequence[SourceQuery], k: int) -> list[Candidates]:
        """One list per query (each with its own filter), the exact index's in one pass: one
        product of the queries' vectors with the items', masked per query."""
        self.check_fitted()
        if len(queries) < 2 or isinstance(self._index, faiss.IndexHNSW):
            return super().batch(queries, k)
        k = min(check_k(k, type(self).__name__), self.n_items_)
        out = [Candidates.empty()] * len(queries)
        rows = [j for j, q in enumerate(queries) if q.vector is not None]
        if not rows:
            return out
        vectors = _as_matrix(np.stack([np.ravel(queries[j].vector) for j in rows]))
        if vectors.shape[1] != self._index.d:
            raise ConfigError(
                f"{self.name} expects {self._index.d}-d query vectors. "
                f"Got {vectors.shape[1]}-d instead."
            )
        masks = [self.allowed(queries[j]) for j in rows]
        allowed = None
        if any(m is not None for m in masks):
            allowed = np.stack([np.ones(self.n_items_, bool) if m is None else m for m in masks])
        scores, idx = _exact(self._index, self.vectors, vectors, k, allowed)
        for r, j in enumerate(rows):
            keep = idx[r] >= 0
            out[j] = Candidates.from_scores(idx[r][keep], scores[r][keep], self.name)
        return out

    def search_many(self, query: SourceQuery, vectors: np.ndarray, k: int) -> list[Candidates]:
        """One list per query vector, in one pass over the index."""
        self.check_fitted()
        scores, idx = self.search(vectors, k, self.allowed(query))
        return [
            Candidates.from_scores(i[i >= 0], s[i >= 0], self.name)
            for s, i in zip(scores, idx, strict=True)
        ]


class VisualIndexConfig(DenseConfig):
    """``visual/image``: the dense index over the items' image vectors."""

    feature: str = "image"


class VisualSource(DenseSource):
    """``visual/image``: nearest items by image vector (``item_features["image"]``)."""

    kind = "visual/image"
    Config = VisualIndexConfig
