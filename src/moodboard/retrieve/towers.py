"""The two towers of ``two_tower`` (plain ``nn.Module``s) and the trainer that owns the loss.

``ItemTower``: id embedding (an out-of-vocabulary row for cold items and for dropped ids) +
one linear projection per dense content feature (text, image) + one embedding per categorical
attribute -> MLP -> unit vector. ``UserTower``: the item-tower outputs of a user's recent items,
pooled (mean or attention with recency positions), plus a user id embedding -> unit vector.
``TwoTowerTrainer``: next-item prediction, sampled softmax over in-batch positives (log-Q
corrected) and uniform random items, temperature-scaled cosines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moodboard.retrieve.two_tower import TwoTowerConfig

_log = logging.getLogger(__name__)


class ItemTower(nn.Module):
    """An item's vector from its id and its content.

    Parameters
    ----------
    n_ids
        Items with an id embedding (``0 .. n_ids - 1``); row ``n_ids`` is the shared
        out-of-vocabulary row used for cold items, new items and dropped ids.
    dense
        Dense content features by name and dimension, in input order.
    vocab
        The vocabulary size of each categorical attribute (codes ``0 .. v - 1``, -1 missing).
    dim, hidden
        Output and hidden widths.
    id_dropout
        Share of ids replaced by the out-of-vocabulary row in training.
    """

    def __init__(
        self,
        n_ids: int,
        dense: Mapping[str, int],
        vocab: Sequence[int],
        dim: int,
        hidden: int,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_ids = n_ids
        self.dense_names = list(dense)
        self.id_dropout = id_dropout
        self.ids = nn.Embedding(n_ids + 1, hidden)
        nn.init.normal_(self.ids.weight, std=0.05)
        self.dense = nn.ModuleList(nn.Linear(d, hidden) for d in dense.values())
        self.attrs = nn.ModuleList(nn.Embedding(v + 1, hidden, padding_idx=0) for v in vocab)
        for emb in self.attrs:
            nn.init.normal_(emb.weight, std=0.05)
            emb.weight.data[0].zero_()
        self.norm = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.register_buffer("cold", torch.zeros(n_ids + 1, dtype=torch.bool))

    def forward(
        self, ids: torch.Tensor, dense: Sequence[torch.Tensor], attrs: torch.Tensor | None
    ) -> torch.Tensor:
        """Unit vectors ``(n, dim)`` of items ``ids`` (ids >= n_ids are new: no id embedding).

        ``dense`` holds one ``(n, d)`` float tensor per dense feature, ``attrs`` the ``(n, m)``
        attribute codes (-1 missing) or None when there are no attributes.
        """
        oov = (ids >= self.n_ids) | self.cold[ids.clamp(max=self.n_ids)]
        if self.training and self.id_dropout > 0:
            oov = oov | (torch.rand(ids.shape, device=ids.device) < self.id_dropout)
        h = self.ids(torch.where(oov, torch.full_like(ids, self.n_ids), ids))
        for proj, x in zip(self.dense, dense, strict=True):
            h = h + proj(F.normalize(x, dim=-1))  # every content vector on the same scale
        if attrs is not None:
            for j, emb in enumerate(self.attrs):
                h = h + emb(attrs[:, j] + 1)
        return F.normalize(self.mlp(self.norm(h)), dim=-1)


class UserTower(nn.Module):
    """A user's vector from the item vectors of their recent items and their id.

    Parameters
    ----------
    n_users
        Users with their own id row; rows ``n_users .. n_users + buckets - 1`` are the hash
        buckets of unknown users (and of dropped ids in training).
    buckets
        Hash buckets for unknown users.
    dim, hidden
        The item vectors' width and the hidden width.
    max_history
        Positions (recency ranks) the attention knows.
    pooling
        ``"mean"`` or ``"attention"``.
    user_dropout
        Share of known ids replaced by their hash bucket in training.
    """

    def __init__(
        self,
        n_users: int,
        buckets: int,
        dim: int,
        hidden: int,
        max_history: int,
        pooling: str = "attention",
        user_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_users = n_users
        self.pooling = pooling
        self.user_dropout = user_dropout
        self.users = nn.Embedding(n_users + buckets, dim)
        nn.init.normal_(self.users.weight, std=0.01)
        self.positions = nn.Embedding(max_history, dim)
        nn.init.normal_(self.positions.weight, std=0.05)
        self.attention = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out = nn.Sequential(nn.Linear(3 * dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(
        self, history: torch.Tensor, mask: torch.Tensor, users: torch.Tensor, buckets: torch.Tensor
    ) -> torch.Tensor:
        """Unit vectors ``(b, dim)``.

        ``history`` ``(b, L, dim)`` holds item vectors right-aligned (most recent last),
        ``mask`` ``(b, L)`` which are real; ``users`` the id rows (-1 for unknown users) and
        ``buckets`` the hash-bucket rows of the same users.
        """
        m = mask.unsqueeze(-1).to(history.dtype)
        count = m.sum(1).clamp(min=1.0)
        mean = (history * m).sum(1) / count
        if self.pooling == "attention":
            L = history.shape[1]
            recency = torch.arange(L - 1, -1, -1, device=history.device).clamp(
                max=self.positions.num_embeddings - 1
            )
            logits = self.attention(history + self.positions(recency)).squeeze(-1)
            logits = logits.masked_fill(~mask, float("-inf"))
            w = torch.softmax(logits, dim=1).nan_to_num(0.0)  # rows without history: all 0
            pooled = (history * w.unsqueeze(-1)).sum(1)
        else:
            pooled = mean
        oov = users < 0
        if self.training and self.user_dropout > 0:
            oov = oov | (torch.rand(users.shape, device=users.device) < self.user_dropout)
        ids = self.users(torch.where(oov, buckets, users))
        return F.normalize(pooled + self.out(torch.cat([pooled, mean, ids], dim=-1)), dim=-1)


class TwoTowerModel(nn.Module):
    """The item tower and the user tower, trained together."""

    def __init__(self, item: ItemTower, user: UserTower) -> None:
        super().__init__()
        self.item = item
        self.user = user


@dataclass(frozen=True)
class ItemInputs:
    """Every item's content as tensors: dense features in the tower's order, attribute codes."""

    dense: list[torch.Tensor]
    attrs: torch.Tensor | None

    @classmethod
    def from_numpy(cls, dense: Sequence[np.ndarray], attrs: np.ndarray | None) -> ItemInputs:
        """From float arrays ``(n, d)`` and int codes ``(n, m)`` (or None)."""
        return cls(
            [torch.as_tensor(np.asarray(x, dtype=np.float32)) for x in dense],
            None if attrs is None else torch.as_tensor(np.asarray(attrs, dtype=np.int64)),
        )

    def rows(self, idx: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The inputs of items ``idx``."""
        return [x[idx] for x in self.dense], None if self.attrs is None else self.attrs[idx]


def encode_items(
    tower: ItemTower, inputs: ItemInputs, rows: torch.Tensor, ids: torch.Tensor | None = None
) -> torch.Tensor:
    """The tower's vectors of the items at ``rows`` of ``inputs`` whose ids are ``ids``
    (default: the rows themselves; ids >= the tower's ``n_ids`` read content only)."""
    dense, attrs = inputs.rows(rows)
    return tower(rows if ids is None else ids, dense, attrs)


@dataclass(frozen=True)
class Examples:
    """Next-item examples over flattened sequences: example ``e`` predicts ``flat[end[e]]``
    from ``flat[start[e]:end[e]]`` (its last ``max_history`` items)."""

    flat: np.ndarray
    start: np.ndarray
    end: np.ndarray
    user: np.ndarray
    bucket: np.ndarray
    weight: np.ndarray

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[np.ndarray],
        user_rows: np.ndarray,
        bucket_rows: np.ndarray,
        weights: Sequence[np.ndarray] | None,
        max_history: int,
    ) -> Examples:
        """One example per position ``t >= 1`` of each sequence; ``user_rows`` and
        ``bucket_rows`` give each sequence's user id row (-1: none) and hash-bucket row."""
        lengths = np.asarray([len(s) for s in sequences], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flat = (
            np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
            if len(sequences)
            else np.empty(0, dtype=np.int64)
        )
        w = (
            np.concatenate([np.asarray(x, dtype=np.float32) for x in weights])
            if weights is not None and len(weights)
            else np.ones(len(flat), dtype=np.float32)
        )
        owner = np.repeat(np.arange(len(sequences)), lengths)
        pos = np.arange(len(flat)) - offsets[owner]
        end = np.flatnonzero(pos >= 1)
        start = np.maximum(offsets[owner[end]], end - max_history)
        weight = w[end] / max(float(w[end].mean()), 1e-9) if len(end) else w[end]
        who = owner[end]
        return cls(
            flat, start, end, np.asarray(user_rows)[who], np.asarray(bucket_rows)[who], weight
        )

    def __len__(self) -> int:
        return len(self.end)

    def histories(self, rows: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Right-aligned ``(b, length)`` item matrix and its mask for examples ``rows``."""
        idx = self.end[rows, None] - length + np.arange(length)[None, :]
        mask = idx >= self.start[rows, None]
        return np.where(mask, self.flat[np.maximum(idx, 0)], 0), mask


class TwoTowerTrainer:
    """Trains a ``TwoTowerModel`` on next-item examples.

    Parameters
    ----------
    config
        Temperature, negatives, log-Q correction, epochs, batch size, optimizer, seed.
    """

    def __init__(self, config: TwoTowerConfig) -> None:
        self.config = config

    def loss(
        self,
        model: TwoTowerModel,
        inputs: ItemInputs,
        batch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        log_q: torch.Tensor,
        negatives: torch.Tensor,
        n_warm: int,
    ) -> torch.Tensor:
        """Weighted sampled-softmax loss of one batch ``(history, mask, users, buckets,
        targets)`` with in-batch and random negatives."""
        cfg = self.config
        hist, mask, users, buckets, targets = (torch.as_tensor(x) for x in batch)
        wanted = torch.cat([hist.flatten(), targets, negatives])
        uniq, inverse = torch.unique(wanted, return_inverse=True)
        vecs = encode_items(model.item, inputs, uniq)[inverse]
        b, length = hist.shape
        h = vecs[: b * length].view(b, length, -1)
        pos = vecs[b * length : b * length + b]
        neg = vecs[b * length + b :]
        u = model.user(h, mask, users, buckets)
        logits = u @ pos.T / cfg.temperature
        if cfg.logq:
            logits = logits - (log_q[targets] + np.log(b))[None, :]
        same = targets[:, None] == targets[None, :]
        logits = logits.masked_fill(same & ~torch.eye(b, dtype=torch.bool), float("-inf"))
        if len(negatives):
            rand = u @ neg.T / cfg.temperature
            if cfg.logq:
                rand = rand - float(np.log(len(negatives) / n_warm))
            rand = rand.masked_fill(targets[:, None] == negatives[None, :], float("-inf"))
            logits = torch.cat([logits, rand], dim=1)
        return F.cross_entropy(logits, torch.arange(b), reduction="none")

    def fit(
        self,
        model: TwoTowerModel,
        inputs: ItemInputs,
        examples: Examples,
        n_items: int,
    ) -> list[float]:
        """Train in place; returns the mean loss of each epoch.

        Parameters
        ----------
        model
            The towers.
        inputs
            Every item's content.
        examples
            The next-item examples.
        n_items
            Items random negatives are drawn from.
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(self.config.train_threads)  # small models: threads only contend
        try:
            return self._fit(model, inputs, examples, n_items)
        finally:
            torch.set_num_threads(threads)

    def _fit(
        self, model: TwoTowerModel, inputs: ItemInputs, examples: Examples, n_items: int
    ) -> list[float]:
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        freq = np.bincount(examples.flat[examples.end], minlength=n_items).astype(np.float64)
        log_q = torch.as_tensor(np.log(np.maximum(freq, 1e-3) / max(freq.sum(), 1.0)))
        # random negatives come from the items with an id embedding: a never-engaged item is
        # not pushed away from every user, so its content alone places it on day one
        warm = torch.as_tensor(np.flatnonzero(~model.item.cold[:n_items].numpy()))
        if len(warm) == 0:
            warm = torch.arange(n_items)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        model.train()
        losses: list[float] = []
        n = len(examples)
        for epoch in range(cfg.epochs):
            order = rng.permutation(n)
            total = 0.0
            for lo in range(0, n, cfg.batch_size):
                rows = order[lo : lo + cfg.batch_size]
                if len(rows) < 2:
                    continue
                length = int(min(cfg.max_history, (examples.end - examples.start)[rows].max()))
                hist, mask = examples.histories(rows, length)
                targets = examples.flat[examples.end[rows]]
                batch = (hist, mask, examples.user[rows], examples.bucket[rows], targets)
                pick = torch.randint(0, len(warm), (cfg.random_negatives,), generator=gen)
                negatives = warm[pick]
                loss = self.loss(model, inputs, batch, log_q, negatives, len(warm))
                w = torch.as_tensor(examples.weight[rows])
                loss = (loss * w).sum() / w.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(rows)
            losses.append(total / max(n, 1))
            _log.debug("two_tower epoch %d: loss %.4f", epoch + 1, losses[-1])
        model.eval()
        return losses
