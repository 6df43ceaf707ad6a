"""``dense/*`` and ``visual/*``: nearest neighbours by inner product on FAISS.

Exact ``IndexFlatIP`` under ``exact_below`` items, HNSW above it, behind the same API. Filters
run inside the search through an ``IDSelectorBitmap``, so a filtered query still gets ``k``
results when ``k`` items pass.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pydantic import Field

from moodboard.data import Candidates, Catalog
from moodboard.errors import ConfigError
from moodboard.retrieve.base import Source, SourceConfig, SourceQuery

_log = logging.getLogger(__name__)


class DenseConfig(SourceConfig):
    """FAISS index parameters."""

    exact_below: int = Field(default=50_000, ge=1)
    hnsw_m: int = Field(default=32, ge=4)
    ef_construction: int = Field(default=80, ge=8)
    ef_search: int = Field(default=128, ge=8)


def _as_matrix(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float32)))


class DenseSource(Source):
    """Inner-product search over item vectors (L2-normalized: cosine similarity)."""

    kind = "dense/text"
    Config = DenseConfig
    config: DenseConfig

    def _fit(self, catalog: Catalog, vectors: np.ndarray | None = None, **_: Any) -> None:
        if vectors is None or len(vectors) != len(catalog):
            raise ConfigError(
                f"{self.name} needs one vector per catalog item: "
                f"fit(catalog, vectors=array of shape ({len(catalog)}, dim))."
            )
        x = _as_matrix(vectors)
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
        self._check_fitted()
        return int(self._index.d)

    def save(self, folder: Path) -> None:
        """Write the FAISS index, the vectors (.npy) and the config."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(folder / "index.faiss"))
        np.save(folder / "vectors.npy", self.vectors)
        (folder / "source.json").write_text(self.config.model_dump_json())

    @classmethod
    def load(cls, folder: Path, catalog: Catalog, name: str | None = None) -> DenseSource:
        """Open a saved index."""
        folder = Path(folder)
        src = cls(DenseConfig.model_validate_json((folder / "source.json").read_text()), name)
        src._index = faiss.read_index(str(folder / "index.faiss"))
        src.vectors = np.load(folder / "vectors.npy")
        src.catalog = catalog
        src._fitted = True
        return src

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batch search: (scores, indices), -1 where fewer than k items pass.

        Thread-safe: the filter bitmap lives in this call's frame until FAISS returns.
        """
        self._check_fitted()
        k = max(1, min(int(k), self._index.ntotal))  # FAISS allocates n x k: never past the index
        hnsw = isinstance(self._index, faiss.IndexHNSW)
        params = faiss.SearchParametersHNSW() if hnsw else faiss.SearchParameters()
        if hnsw:
            params.efSearch = self.config.ef_search
        bits = sel = None
        if allowed is not None:
            bits = np.packbits(allowed.astype(np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
            params.sel = sel
        out = self._index.search(_as_matrix(vectors), k, params=params)
        del bits, sel  # both kept alive until FAISS returned, on purpose
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
