"""``two_tower``: a user tower and an item tower trained on engagement sequences, served by FAISS.

The item tower reads ids AND content (``SequenceData.item_features``: 2-D float arrays such as
``"text"`` ``(n, 384)`` and ``"image"`` ``(n, 1280)``, integer arrays of categorical attribute
codes with -1 for missing). Items never engaged with, and items added after training
(``add_items``), have no id embedding of their own: their vector comes from their content,
which id dropout in training taught the tower to read, so a new item is retrievable on day
one. The user tower pools the item vectors of the user's recent items and adds a user id
embedding (hash buckets for users it has not seen). Item vectors are computed once and searched
with an exact inner-product FAISS index (``IndexFlatIP``); vectors are unit norm.

Saved as ``model.pt`` (a state dict, loaded with ``weights_only=True``), ``item_vectors.npy``,
``users.json`` and ``two_tower.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import faiss
import numpy as np

from moodboard.config import TwoTowerConfig
from moodboard.data import Candidates
from moodboard.errors import ConfigError, NotFittedError, NotFoundError
from moodboard.retrieve.recs import SequenceData

if TYPE_CHECKING:
    from moodboard.retrieve.towers import TwoTowerModel

_log = logging.getLogger(__name__)
_BATCH = 4096


def user_hash(user: str | None) -> int:
    """A stable 63-bit hash of a user id (None hashes like the empty id)."""
    digest = hashlib.blake2b((user or "").encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def attribute_codes(columns: Sequence[np.ndarray], max_vocab: int = 1000) -> np.ndarray:
    """Integer codes ``(n, m)`` of categorical columns (None/empty: missing, code -1).

    Columns with a single value or more than ``max_vocab`` values carry no usable signal and
    are left out, so ``m`` may be smaller than ``len(columns)``.
    """
    out = []
    for col in columns:
        values = np.asarray([v if v not in (None, "") else "" for v in col], dtype=str)
        vocab, codes = np.unique(values, return_inverse=True)
        real = vocab[vocab != ""]
        if not 2 <= len(real) <= max_vocab:
            continue
        codes = codes.ravel().astype(np.int32)
        if "" in vocab:
            gap = int(np.flatnonzero(vocab == "")[0])
            codes = np.where(codes == gap, -1, codes - (codes > gap))
        out.append(codes)
    n = len(columns[0]) if len(columns) else 0
    return np.stack(out, axis=1) if out else np.empty((n, 0), dtype=np.int32)


def _is_bag(value: object, n: int) -> bool:
    """A list of ``n`` int sequences of varying lengths (per-item attribute ids)."""
    if not isinstance(value, list | tuple) or len(value) != n or n == 0:
        return False
    lengths = {len(v) for v in value if hasattr(v, "__len__")}
    return len(lengths) > 1 and all(np.asarray(v).dtype.kind in "iu" for v in value if len(v))


def bag_vectors(bags: Sequence[Sequence[int]]) -> np.ndarray:
    """Per-item bags of attribute ids (any ints) as ``(n, vocab)`` float32 rows that average
    the item's ids (a linear layer over them is a mean of attribute embeddings)."""
    vocab = {a: j for j, a in enumerate(sorted({int(a) for b in bags for a in b}))}
    out = np.zeros((len(bags), max(len(vocab), 1)), dtype=np.float32)
    for i, b in enumerate(bags):
        if len(b):
            out[i, [vocab[int(a)] for a in b]] = 1.0 / len(b)
    return out


def split_features(
    features: Mapping[str, object], n: int
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Dense features (2-D float) by name and the attribute codes ``(n, m)`` (all integer
    features side by side), each checked to have ``n`` rows. A list of per-item attribute-id
    bags of varying lengths becomes a dense feature (``bag_vectors``).

    Raises
    ------
    ConfigError
        If a feature has the wrong number of rows or is neither float 2-D nor integer.
    """
    dense: dict[str, np.ndarray] = {}
    codes: list[np.ndarray] = []
    for name, value in features.items():
        if _is_bag(value, n):
            dense[name] = bag_vectors(value)  # type: ignore[arg-type]
            continue
        parts = list(value) if isinstance(value, list | tuple) else [value]
        for part in parts:
            arr = np.asarray(part)
            if len(arr) != n:
                raise ConfigError(
                    f"The item feature {name!r} of two_tower must have one row per item ({n}). "
                    f"Got {len(arr)} rows instead."
                )
            if arr.dtype.kind in "iu":
                codes.append(arr.reshape(n, -1).astype(np.int64))
            elif arr.dtype.kind == "f" and arr.ndim == 2 and len(parts) == 1:
                dense[name] = np.ascontiguousarray(arr, dtype=np.float32)
            else:
                raise ConfigError(
                    f"The item feature {name!r} of two_tower must be a 2-D float array (content "
                    f"vectors) or integer codes (attributes). Got {arr.dtype} {arr.shape} instead."
                )
    attrs = np.concatenate(codes, axis=1) if codes else None
    return dense, attrs


class TwoTower:
    """The two-tower recommender (``Recommender`` contract, plus vectors and FAISS search).

    Parameters
    ----------
    config
        Tower sizes, negatives, temperature and training parameters.
    """

    name = "two_tower"

    def __init__(self, config: TwoTowerConfig | None = None) -> None:
        self.config = config or TwoTowerConfig()
        self._model: TwoTowerModel | None = None

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, data: SequenceData, users: Sequence[str] | None = None) -> Self:
        """Train the towers on the sequences; returns self.

        Parameters
        ----------
        data
            Item sequences (oldest first), optional per-event weights and item features.
        users
            The user id of each sequence, for the user id embedding (None: no ids).

        Raises
        ------
        ConfigError
            If ``n_items`` < 1, a sequence holds an index outside ``0 .. n_items - 1``, or
            ``users`` or a feature does not line up.
        """
        import torch

        from moodboard.retrieve.towers import Examples, ItemInputs, TwoTowerTrainer

        t0 = time.perf_counter()
        cfg, n = self.config, int(data.n_items)
        if n < 1:
            raise ConfigError(f"two_tower needs n_items >= 1. Got {n} instead.")
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
        return self

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

    def _check_fitted(self) -> None:
        if self._model is None:
            raise NotFittedError("TwoTower isn't fitted, call fit first")

    # -- items --------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        """Items scored: the fitted ones plus any added since."""
        self._check_fitted()
        return len(self._vectors)

    def item_vectors(self) -> np.ndarray:
        """The item tower's unit vectors ``(n_items, dim)`` (read-only)."""
        self._check_fitted()
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

        self._check_fitted()
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

        Raises
        ------
        NotFoundError
            If a history holds an index outside ``0 .. n_items - 1``.
        """
        import torch

        self._check_fitted()
        b, length = len(histories), self.config.max_history
        hist = np.zeros((b, length), dtype=np.int64)
        mask = np.zeros((b, length), dtype=bool)
        for j, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()[-length:]
            if len(h) and (h.min() < 0 or h.max() >= len(self._vectors)):
                raise NotFoundError(
                    f"A history names item {int(h.max() if h.max() >= 0 else h.min())}; "
                    f"two_tower knows items 0..{len(self._vectors) - 1}."
                )
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

    def score(
        self, histories: Sequence[np.ndarray], users: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Cosine of each user vector with every item vector, ``(n, n_items)`` float32."""
        if not len(histories):
            return np.empty((0, self.n_items), dtype=np.float32)
        return self.user_vectors(histories, users) @ self._vectors.T

    def search(
        self, vectors: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS inner-product search: ``(scores, indices)``, -1 where fewer than k pass."""
        self._check_fitted()
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

    # -- artifacts ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write ``model.pt`` (state dict), ``item_vectors.npy``, ``users.json``, config JSON."""
        import torch

        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self._model.state_dict(), folder / "model.pt")
        np.save(folder / "item_vectors.npy", self._vectors)
        (folder / "users.json").write_text(json.dumps(list(self._users)))
        meta = {
            "config": self.config.model_dump(mode="json"),
            "n_ids": self._n_ids,
            "dense": self._dense_dims,
            "vocab": self._vocab,
            "stats": getattr(self, "stats", {}),
        }
        (folder / "two_tower.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path) -> TwoTower:
        """Open a saved model (no pickles: the state dict loads with ``weights_only=True``)."""
        import torch

        folder = Path(folder)
        meta = json.loads((folder / "two_tower.json").read_text())
        rec = cls(TwoTowerConfig.model_validate(meta["config"]))
        rec._n_ids = int(meta["n_ids"])
        rec._dense_dims = {k: int(v) for k, v in meta["dense"].items()}
        rec._vocab = [int(v) for v in meta["vocab"]]
        rec._users = {u: j for j, u in enumerate(json.loads((folder / "users.json").read_text()))}
        rec.stats = meta.get("stats", {})
        model = rec._new_model()
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        model.eval()
        rec._model = model
        rec._set_vectors(np.load(folder / "item_vectors.npy"))
        return rec
