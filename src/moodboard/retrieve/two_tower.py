"""``two_tower``: a user tower and an item tower trained on engagement sequences, served by FAISS.

The item tower reads ids AND content (``TrainingData.item_features``: 2-D float arrays such as
``"text"`` ``(n, 384)`` and ``"image"`` ``(n, 1280)``, integer arrays of categorical attribute
codes with -1 for missing). Items never engaged with, and items added after training
(``add_items``), have no id embedding of their own: their vector comes from their content,
which id dropout in training taught the tower to read, so a new item is retrievable on day
one. The user tower pools the item vectors of the user's recent items and adds a user id
embedding (hash buckets for users it has not seen). Item vectors are computed once and searched
with an exact inner-product FAISS index (``IndexFlatIP``); vectors are unit norm.

Saved as ``model.pt`` (a state dict, loaded with ``weights_only=True``), ``item_vectors.npy``,
``users.json`` beside ``source.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import faiss
import numpy as np
from pydantic import Field

from moodboard.data import Candidates
from moodboard.errors import ConfigError
from moodboard.retrieve.base import CandidateSource, SourceConfig, SourceQuery, TrainingData
from moodboard.retrieve.item_features import attribute_codes, split_features, user_hash

if TYPE_CHECKING:
    from moodboard.retrieve.towers import TwoTowerModel

_log = logging.getLogger(__name__)
_BATCH = 4096


class TwoTowerConfig(SourceConfig):
    """The ``two_tower`` retrieval model: its towers, negatives and training loop.

    The item tower embeds an item from its id (an out-of-vocabulary row for items never
    engaged with, and for ``id_dropout`` of the training ids) plus its content (text and image
    vectors, categorical attributes); the user tower pools the item-tower outputs of the user's
    last ``max_history`` items (``pooling``) and adds a user id embedding (users unseen in
    training hash into ``user_buckets`` shared rows, which ``user_dropout`` trains). Training
    is next-item prediction with in-batch negatives corrected by the log of each item's
    sampling frequency (``logq``) plus ``random_negatives`` uniform items per batch; logits are
    cosines divided by ``temperature``.
    """

    dim: int = Field(default=64, ge=2)
    hidden: int = Field(default=128, ge=2)
    pooling: Literal["mean", "attention"] = "attention"
    max_history: int = Field(default=30, ge=1)
    user_buckets: int = Field(default=64, ge=1)
    user_dropout: float = Field(default=0.5, ge=0, le=1)
    id_dropout: float = Field(default=0.5, ge=0, le=1)
    min_item_count: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.1, gt=0)
    random_negatives: int = Field(default=128, ge=0)
    logq: bool = True
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    train_threads: int = Field(default=1, ge=1)
    seed: int = 0


__all__ = ["TwoTower", "TwoTowerConfig", "attribute_codes", "user_hash"]


class TwoTower(CandidateSource):
    """The two-tower recommender: a full-ranking source with item vectors and FAISS search.

    A query's ``history`` (or, without one, its seed ``items``) and ``user`` make the user
    vector; its nearest item vectors are the candidates.
    """

    kind = "two_tower"
    Config = TwoTowerConfig
    config: TwoTowerConfig
    full_ranking = True
    _model: TwoTowerModel

    # -- fitting ----------------------------------------------------------------------------
    def _fit(self, data: TrainingData) -> None:
        """Train the towers on the item sequences (oldest first), optional per-event weights,
        item features, and ``data.users`` (the user id embedding; None: no ids).

        Raises
        ------
        ConfigError
            If ``n_items`` < 1, a sequence holds an index outside ``0 .. n_items - 1``, or
            ``users`` or a feature does not line up.
        """
        import torch

        from moodboard.retrieve.towers import Examples, ItemInputs, TwoTowerTrainer

        t0 = time.perf_counter()
        cfg, n, users = self.config, int(data.n_items), data.users
        seqs = [np.asarray(s, dtype=np.int64).ravel() for s in data.sequences]
        bad = [s for s in seqs if len(s) and (s.min() < 0 or s.max() >= n)]
        if bad:
            raise ConfigError(
                f"two_tower sequences must hold item indices in 0..{n - 1}. "
                f"Got {int(bad[0].min())}..{int(bad[0].max())} instead."
            )
        if users is not None and len(users) != len(seqs):
            raise ConfigError(
                f"The 'users' parameter of two_tower must name one user per sequence "
                f"({len(seqs)}). Got {len(users)} instead."
            )
        dense, attrs = split_features(data.item_features, n)
        self._dense_dims = {k: int(v.shape[1]) for k, v in dense.items()}
        self._vocab = [] if attrs is None else [int(max(c.max(), 0)) + 1 for c in attrs.T]
        ids = [] if users is None else list(dict.fromkeys(str(u) for u in users))
        self._users = {u: j for j, u in enumerate(ids)}
        self._n_ids = n
        counts = np.bincount(np.concatenate([*seqs, np.empty(0, np.int64)]), minlength=n)
        who = [None] * len(seqs) if users is None else [str(u) for u in users]
        rows = np.asarray([self._users.get(u, -1) if u else -1 for u in who], dtype=np.int64)
        buckets = np.asarray([self._bucket(u) for u in who], dtype=np.int64)
        examples = Examples.from_sequences(seqs, rows, buckets, data.weights, cfg.max_history)
        inputs = ItemInputs.from_numpy(list(dense.values()), attrs)
        losses: list[float] = []
        with torch.random.fork_rng():  # seeded init, dropout, negatives; the global RNG untouched
            torch.manual_seed(cfg.seed)
            model = self._new_model()
            model.item.cold[:n] = torch.as_tensor(counts < cfg.min_item_count)
            if len(examples) >= 2:
                losses = TwoTowerTrainer(cfg).fit(model, inputs, examples, n)
        model.eval()
        self._model = model
        self._set_vectors(self._encode(inputs, np.arange(n)))
        self.stats = {
            "items": n,
            "users": len(self._users),
            "examples": len(examples),
            "cold_items": int((counts < cfg.min_item_count).sum()),
            "loss": [round(x, 4) for x in losses],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        _log.info("two_tower: %s", self.stats)

    def _new_model(self) -> TwoTowerModel:
        from moodboard.retrieve.towers import ItemTower, TwoTowerModel, UserTower

        cfg = self.config
        item = ItemTower(
            self._n_ids, self._dense_dims, self._vocab, cfg.dim, cfg.hidden, cfg.id_dropout
        )
        user = UserTower(
            len(self._users),
            cfg.user_buckets,
            cfg.dim,
            cfg.hidden,
            cfg.max_history,
            cfg.pooling,
            cfg.user_dropout,
        )
        return TwoTowerModel(item, user)

    def _bucket(self, user: str | None) -> int:
        return len(self._users) + user_hash(user) % self.config.user_buckets

    def _encode(self, inputs: Any, ids: np.ndarray) -> np.ndarray:
        """Vectors of the items of ``inputs`` (in order) whose ids are ``ids``."""
        import torch

        from moodboard.retrieve.towers import encode_items

        out = []
        with torch.no_grad():
            for lo in range(0, len(ids), _BATCH):
                rows = torch.arange(lo, min(lo + _BATCH, len(ids)))
                i = torch.as_tensor(ids[lo : lo + _BATCH], dtype=torch.int64)
                out.append(encode_items(self._model.item, inputs, rows, i).numpy())
        dim = self.config.dim
        return np.concatenate(out) if out else np.empty((0, dim), dtype=np.float32)

    def _set_vectors(self, vectors: np.ndarray) -> None:
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index = faiss.IndexFlatIP(self.config.dim)
        self._index.add(self._vectors)
        self.n_items_ = len(self._vectors)

    # -- items --------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        """Items scored: the fitted ones plus any added since."""
        self.check_fitted()
        return len(self._vectors)

    def item_vectors(self) -> np.ndarray:
        """The item tower's unit vectors ``(n_items, dim)`` (read-only)."""
        self.check_fitted()
        v = self._vectors.view()
        v.setflags(write=False)
        return v

    def encode_items(self, features: Mapping[str, object]) -> np.ndarray:
        """Vectors of items known by their content only (no id embedding, as on day one).

        Parameters
        ----------
        features
            The same feature names and widths as in ``fit``, one row per item.

        Raises
        ------
        ConfigError
            If a feature is missing or has the wrong width.
        """
        from moodboard.retrieve.towers import ItemInputs

        self.check_fitted()
        n = len(next(iter(features.values()))) if features else 0
        dense, attrs = split_features(features, n)
        missing = set(self._dense_dims) - set(dense)
        wrong = {k: v.shape[1] for k, v in dense.items() if self._dense_dims.get(k) != v.shape[1]}
        if missing or wrong:
            raise ConfigError(
                f"two_tower items need the features {self._dense_dims} (name: width). "
                f"Missing {sorted(missing)}, wrong width {wrong}."
            )
        m = len(self._vocab)
        if m:
            codes = np.full((n, m), -1, dtype=np.int64) if attrs is None else attrs[:, :m]
            attrs = np.where(codes < np.asarray(self._vocab)[None, :], codes, -1)
        else:
            attrs = None
        inputs = ItemInputs.from_numpy([dense[k] for k in self._dense_dims], attrs)
        ids = np.full(n, self._n_ids, dtype=np.int64)  # the out-of-vocabulary id row
        return self._encode(inputs, ids) if n else np.empty((0, self.config.dim), np.float32)

    def add_items(self, features: Mapping[str, object]) -> Self:
        """Append new items known by their content only; they get the next indices."""
        vectors = self.encode_items(features)
        self._set_vectors(np.concatenate([self._vectors, vectors]))
        return self

    # -- users --------------------------------------------------------------------------------
    def user_vectors(
        self, histories: Sequence[np.ndarray], users: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """The user tower's unit vectors ``(len(histories), dim)``.

        History items outside ``0 .. n_items - 1`` are dropped (the unknown-item policy); an
        unknown user id gets its hash bucket's row.
        """
        import torch

        self.check_fitted()
        b, length = len(histories), self.config.max_history
        hist = np.zeros((b, length), dtype=np.int64)
        mask = np.zeros((b, length), dtype=bool)
        for j, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            h = h[(h >= 0) & (h < len(self._vectors))][-length:]
            if len(h):
                hist[j, -len(h) :], mask[j, -len(h) :] = h, True
        who = [None] * b if users is None else list(users)
        rows = np.asarray([self._users.get(u, -1) if u else -1 for u in who], dtype=np.int64)
        buckets = np.asarray([self._bucket(u) for u in who], dtype=np.int64)
        with torch.no_grad():
            u = self._model.user(
                torch.as_tensor(self._vectors[hist]),
                torch.as_tensor(mask),
                torch.as_tensor(rows),
                torch.as_tensor(buckets),
            )
        return u.numpy().astype(np.float32)

    def user_vector(self, history: np.ndarray, user: str | None = None) -> np.ndarray:
        """One user's vector ``(dim,)`` from their history (oldest first)."""
        return self.user_vectors([history], [user])[0]

    def _score(
        self,
        histories: Sequence[np.ndarray],
        weights: Sequence[np.ndarray] | None,
        users: Sequence[str | None] | None,
    ) -> np.ndarray:
        """Cosine of each user vector with every item vector, ``(n, n_items)`` float32."""
        if not len(histories):
            return np.empty((0, self.n_items), dtype=np.float32)
        return self.user_vectors(histories, users) @ self._vectors.T

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS inner-product search: ``(scores, indices)``, -1 where fewer than k pass."""
        self.check_fitted()
        k = max(1, min(int(k), self._index.ntotal))  # FAISS allocates n x k: never past the index
        params = faiss.SearchParameters()
        bits = sel = None
        if allowed is not None:
            bits = np.packbits(np.asarray(allowed, dtype=np.uint8), bitorder="little")
            sel = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
            params.sel = sel
        x = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        out = self._index.search(x, k, params=params)
        del bits, sel  # alive until FAISS returned, on purpose
        return out

    def top_items(
        self,
        history: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        user: str | None = None,
    ) -> Candidates:
        """The ``k`` best items for one user among ``allowed`` (a boolean mask), best first."""
        scores, idx = self.search(self.user_vector(history, user), k, allowed)
        keep = idx[0] >= 0
        return Candidates.from_scores(idx[0][keep], scores[0][keep], self.name)

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        history = query.history if query.history is not None else query.items
        history = np.empty(0, np.int64) if history is None else history
        return self.top_items(history, k, allowed, query.user)

    # -- artifacts ----------------------------------------------------------------------------
    def _save(self, folder: Path) -> dict[str, Any]:
        """Write ``model.pt`` (state dict), ``item_vectors.npy`` and ``users.json``."""
        import torch

        torch.save(self._model.state_dict(), folder / "model.pt")
        np.save(folder / "item_vectors.npy", self._vectors)
        (folder / "users.json").write_text(json.dumps(list(self._users)))
        return {
            "n_ids": self._n_ids,
            "dense": self._dense_dims,
            "vocab": self._vocab,
            "stats": self.stats,
        }

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        """No pickles: the state dict loads with ``weights_only=True``."""
        import torch

        self._n_ids = int(state["n_ids"])
        self._dense_dims = {k: int(v) for k, v in state["dense"].items()}
        self._vocab = [int(v) for v in state["vocab"]]
        self._users = {u: j for j, u in enumerate(json.loads((folder / "users.json").read_text()))}
        self.stats = state.get("stats", {})
        model = self._new_model()
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        model.eval()
        self._model = model
        self._set_vectors(np.load(folder / "item_vectors.npy", allow_pickle=False))
