"""Baseline candidate sources (``full_ranking``): popularity, ALS, EASE, item kNN.

All four read the training sequences as a binary user-item matrix (repeats count once, except
for ALS where the count scales the confidence); ``TrainingData.weights`` and item features are
ignored. ``score`` builds the same matrix from the given histories, so a history longer than
the one seen in ``fit`` (the validation item appended) is used in full. History items are not
masked: the caller excludes them.

- ``popularity``: the number of training events of each item, the same for every history.
- ``als``: implicit-feedback matrix factorization (``implicit``'s ALS, Hu et al. 2008); a
  history's user vector is solved in closed form against the fitted item factors.
- ``ease``: the closed-form item-item linear model of Steck (2019),
  ``B = I - P diag(1 / diag(P))`` with ``P = (X'X + lambda I)^-1``. The dense ``n_items^2``
  float32 matrix makes it fit for catalogs up to ~20k items (1.3 GB at 18k); only the items
  of the training data are solved for, and ``neighbours`` keeps each item's top-N weights
  (sparse), the form the feed serves.
- ``itemknn``: cosine item-item similarity with shrinkage,
  ``x_i . x_j / (|x_i| |x_j| + shrink)``, keeping each item's ``neighbours`` most similar;
  a history scores the sum of its items' similarity rows.

Cold-start policy: history items outside ``0 .. n_items - 1`` are dropped; an empty history
scores all zeros (ALS, EASE, kNN) or training popularity (``popularity``).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from moodboard.errors import InputError
from moodboard.retrieve.base import CandidateSource, SourceConfig, TrainingData

_log = logging.getLogger(__name__)


def interaction_matrix(
    histories: Sequence[np.ndarray], n_items: int, binary: bool = True
) -> sp.csr_matrix:
    """Histories as a ``(len(histories), n_items)`` float32 CSR matrix.

    Items outside ``0 .. n_items - 1`` are dropped; repeated items count once when ``binary``,
    else their count is the value.
    """
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    cols = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
        if lengths.sum()
        else np.zeros(0, dtype=np.int64)
    )
    rows = np.repeat(np.arange(len(histories)), lengths)
    keep = (cols >= 0) & (cols < n_items)
    m = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])),
        shape=(len(histories), n_items),
    )
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m


def window_counts(
    sequences: Sequence[np.ndarray], n_items: int, window: int, symmetric: bool = True
) -> sp.csr_matrix:
    """Item-item counts of the pairs at most ``window`` events apart, each counting ``1 / d``.

    ``symmetric``: ``(a, b)`` and ``(b, a)`` both count; else only ``a`` before ``b`` (with
    ``window=1``: the transition counts ``a -> b``). Returns an ``(n_items, n_items)`` float64
    CSR matrix with duplicates summed.
    """
    lens = np.array([len(s) for s in sequences], dtype=np.int64)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences] or [np.empty(0, int)])
    user = np.repeat(np.arange(len(lens)), lens)
    rows, cols, vals = [np.empty(0, np.int64)], [np.empty(0, np.int64)], [np.empty(0)]
    for d in range(1, window + 1):
        same = np.flatnonzero(user[:-d] == user[d:])
        rows.append(flat[same])
        cols.append(flat[same + d])
        if symmetric:
            rows.append(flat[same + d])
            cols.append(flat[same])
        vals.append(np.full((1 + symmetric) * len(same), 1.0 / d))
    c = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (n_items, n_items)
    )
    c.sum_duplicates()
    return c


class BaselineConfig(SourceConfig):
    """Base of the baselines' configs; ``seed`` makes every baseline reproducible."""

    seed: int = 0


class _Baseline(CandidateSource):
    """Template of the baselines: ``fit`` checks the data and calls ``_fit_matrix`` on the
    user-item matrix; ``score`` builds the histories' matrix and calls ``_score_matrix``."""

    Config: ClassVar[type[BaselineConfig]]
    full_ranking = True
    binary: ClassVar[bool] = True

    def _fit(self, data: TrainingData) -> None:
        """Raises ``InputError`` if an item is outside ``0 .. n_items - 1``."""
        n = int(data.n_items)
        for s in data.sequences:
            if len(s) and (int(np.min(s)) < 0 or int(np.max(s)) >= n):
                raise InputError(
                    f"{self.name}: items must be in 0 .. {n - 1}; got "
                    f"{int(np.min(s))} .. {int(np.max(s))}. Map ids to indices first."
                )
        self.n_items_ = n
        self._fit_matrix(interaction_matrix(data.sequences, n, binary=self.binary))

    @abstractmethod
    def _fit_matrix(self, x: sp.csr_matrix) -> None: ...

    def _score(
        self,
        histories: Sequence[np.ndarray],
        weights: Sequence[np.ndarray] | None,
        users: Sequence[str | None] | None,
    ) -> np.ndarray:
        h = interaction_matrix(histories, self.n_items_, binary=self.binary)
        return np.ascontiguousarray(self._score_matrix(h), dtype=np.float32)

    @abstractmethod
    def _score_matrix(self, h: sp.csr_matrix) -> np.ndarray: ...


class PopularityConfig(BaselineConfig):
    """``popularity`` has no parameters besides the (unused) seed."""


class Popularity(_Baseline):
    """``popularity``: every history gets the items' training event counts."""

    kind = "popularity"
    Config = PopularityConfig

    def _fit_matrix(self, x: sp.csr_matrix) -> None:
        self.counts_ = np.asarray(x.sum(axis=0), dtype=np.float32).ravel()

    def _score_matrix(self, h: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.counts_, (h.shape[0], 1))

    def _save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "counts.npy", self.counts_)
        return {}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self.counts_ = np.load(folder / "counts.npy", allow_pickle=False)


class ALSConfig(BaselineConfig):
    """Parameters of ``als`` (``implicit.cpu.als.AlternatingLeastSquares``).

    Attributes
    ----------
    factors, regularization, iterations
        Latent dimension, L2 penalty, ALS sweeps.
    alpha
        Confidence of an observed pair: ``alpha * count`` (``implicit``'s convention).
    threads
        ALS threads (0: all cores); BLAS is held to one thread while fitting.
    """

    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.01, ge=0.0)
    alpha: float = Field(default=10.0, gt=0.0)
    iterations: int = Field(default=15, ge=1)
    threads: int = Field(default=0, ge=0)


class ALS(_Baseline):
    """``als``: implicit ALS; scores are user vector . item vector."""

    kind = "als"
    Config = ALSConfig
    binary = False

    def _model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg: ALSConfig = self.config  # type: ignore[assignment]
        return AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=cfg.alpha,
            iterations=cfg.iterations,
            num_threads=cfg.threads,
            random_state=cfg.seed,
            dtype=np.float32,
        )

    def _fit_matrix(self, x: sp.csr_matrix) -> None:
        import implicit.cpu.als  # noqa: F401  (load its BLAS before limiting the threads)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            self.model_ = self._model()
            self.model_.fit(x, show_progress=False)

    def _score_matrix(self, h: sp.csr_matrix) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            users = self.model_.recalculate_user(np.arange(h.shape[0]), h)
        return np.asarray(users, dtype=np.float32) @ self.model_.item_factors.T

    def _save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "item_factors.npy", np.asarray(self.model_.item_factors))
        return {}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self.model_ = self._model()
        self.model_.item_factors = np.load(folder / "item_factors.npy", allow_pickle=False)


def _symmetrize_upper(a: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle of square ``a`` onto its lower one, in place, by blocks."""
    n = a.shape[0]
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        d = a[lo:hi, lo:hi]
        a[lo:hi, lo:hi] = np.triu(d) + np.triu(d, 1).T
        a[hi:, lo:hi] = a[lo:hi, hi:].T


class EASEConfig(BaselineConfig):
    """Parameters of ``ease``.

    Attributes
    ----------
    l2
        The lambda added to the Gram matrix's diagonal.
    neighbours
        0: keep the dense ``n_items^2`` weights. N > 0: keep each item's N weights largest in
        magnitude (its top-N neighbours, positive or negative) as a sparse matrix, which is
        what the feed serves: a small artifact, and scoring reads only the history's rows.
    threads
        BLAS threads while solving (0: BLAS's default). One thread solves a few thousand
        items in about a second and does not spin when other jobs share the cores.
    """

    l2: float = Field(default=200.0, gt=0.0)
    neighbours: int = Field(default=0, ge=0)
    threads: int = Field(default=0, ge=0)


def _top_per_row(w: np.ndarray, n: int) -> sp.csr_matrix:
    """The ``n`` entries of each row of ``w`` largest in magnitude, as CSR (EASE's negative
    weights, which push down what an item's buyers do not buy, matter as the positive do)."""
    n = min(n, w.shape[1])
    cols = np.argpartition(-np.abs(w), n - 1, axis=1)[:, :n] if n < w.shape[1] else None
    if cols is None:
        cols = np.broadcast_to(np.arange(w.shape[1]), w.shape)
    vals = np.take_along_axis(w, cols, axis=1)
    rows = np.repeat(np.arange(w.shape[0]), cols.shape[1])
    m = sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=w.shape, dtype=np.float32)
    m.eliminate_zeros()
    return m


class EASE(_Baseline):
    """``ease``: the closed-form item-item model (Steck, WWW 2019), dense or its top-N
    neighbours per item (``neighbours``).

    Only the items of the training data are solved for: an item nobody interacted with has a
    zero Gram row, so its weights are exactly 0 and the others' do not depend on it.
    """

    kind = "ease"
    Config = EASEConfig

    def _fit_matrix(self, x: sp.csr_matrix) -> None:
        from threadpoolctl import threadpool_limits

        n = x.shape[1]
        active = np.flatnonzero(np.diff(x.tocsc().indptr))
        threads = self.config.threads or None  # type: ignore[attr-defined]
        with threadpool_limits(threads, "blas"):
            w = self._solve(x[:, active]) if len(active) else np.zeros((0, 0), np.float32)
        top = self.config.neighbours  # type: ignore[attr-defined]
        if top:
            local = _top_per_row(w, top) if len(active) else sp.csr_matrix((0, 0))
            coo = local.tocoo()
            self.weights_ = sp.csr_matrix(
                (coo.data, (active[coo.row], active[coo.col])), shape=(n, n), dtype=np.float32
            )
            return
        full = np.zeros((n, n), dtype=np.float32)
        full[np.ix_(active, active)] = w
        self.weights_ = full

    def _solve(self, x: sp.csr_matrix) -> np.ndarray:
        """The dense weights of the items of ``x``'s columns.

        Raises
        ------
        InputError
            If LAPACK cannot factor or invert the regularized Gram matrix.
        """
        from scipy.linalg import lapack

        n = x.shape[1]
        gram = np.ascontiguousarray((x.T @ x).toarray(), dtype=np.float32)
        gram[np.diag_indices(n)] += np.float32(self.config.l2)  # type: ignore[attr-defined]
        # LAPACK works in place on the Fortran-ordered view of the symmetric C-ordered matrix:
        # its lower triangle is our upper one, and the result is read back through ``.T``.
        chol, info = lapack.spotrf(gram.T, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise InputError(f"ease: the Gram matrix + l2 I is not positive definite ({info}).")
        inv, info = lapack.spotri(chol, lower=1, overwrite_c=1)
        if info != 0:
            raise InputError(f"ease: inverting the Gram matrix failed ({info}).")
        p = inv.T  # C-ordered (row access is what scoring does), upper triangle filled
        del gram, chol, inv
        _symmetrize_upper(p)
        diag = p.diagonal().copy()
        p /= -diag[None, :]
        p[np.diag_indices(n)] = 0.0
        return p

    def _score_matrix(self, h: sp.csr_matrix) -> np.ndarray:
        out = h @ self.weights_
        return out.toarray() if sp.issparse(out) else np.asarray(out)

    def _save(self, folder: Path) -> dict[str, Any]:
        if sp.issparse(self.weights_):
            sp.save_npz(folder / "neighbours.npz", self.weights_)
            return {"neighbours": int(self.weights_.nnz)}
        np.save(folder / "weights.npy", self.weights_)
        return {}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        if self.config.neighbours:  # type: ignore[attr-defined]
            self.weights_ = sp.load_npz(folder / "neighbours.npz").tocsr()
        else:
            self.weights_ = np.load(folder / "weights.npy", allow_pickle=False)


class ItemKNNConfig(BaselineConfig):
    """Parameters of ``itemknn``: neighbourhood size and the cosine's shrink term."""

    neighbours: int = Field(default=100, ge=1)
    shrink: float = Field(default=10.0, ge=0.0)


class ItemKNN(_Baseline):
    """``itemknn``: sparse top-``neighbours`` cosine item-item similarity."""

    kind = "itemknn"
    Config = ItemKNNConfig

    def _fit_matrix(self, x: sp.csr_matrix) -> None:
        cfg: ItemKNNConfig = self.config  # type: ignore[assignment]
        n = x.shape[1]
        co = (x.T @ x).tocoo()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel()).astype(np.float32)
        off = co.row != co.col
        r, c = co.row[off], co.col[off]
        v = co.data[off] / (norms[r] * norms[c] + np.float32(cfg.shrink))
        order = np.lexsort((-v, r))  # per row, most similar first
        r, c, v = r[order], c[order], v[order]
        starts = np.searchsorted(r, np.arange(n))
        keep = np.arange(len(r)) - starts[r] < cfg.neighbours
        self.similarity_ = sp.csr_matrix(
            (v[keep].astype(np.float32), (r[keep], c[keep])), shape=(n, n)
        )

    def _score_matrix(self, h: sp.csr_matrix) -> np.ndarray:
        return (h @ self.similarity_).toarray()

    def _save(self, folder: Path) -> dict[str, Any]:
        sp.save_npz(folder / "similarity.npz", self.similarity_)
        return {}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self.similarity_ = sp.load_npz(folder / "similarity.npz").tocsr()
