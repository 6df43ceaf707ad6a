"""The network of ``rank/multihead``: small named modules, a plain ``nn.Module``.

``ItemEmbedding``: a learned id vector (an out-of-vocabulary row for new and dropped ids) plus
a projection of a fixed content-vector table (not trained, not saved: the catalog's text
vectors are given at load). ``ActionSequence`` (TransAct-style): the user's last actions as
item vectors + action-type + log time-gap bucket embeddings, one transformer encoder layer
over them, then attended by the candidate (target attention, padding masked; a learned
"nothing yet" slot keeps users without history defined). ``MMoE``: shared experts, one
softmax gate per task. One ``tower`` and one logit ``head`` per action. ``position_bias``: one
shallow bias per (position, head), added in training; serving fixes position 1, a constant
per head, so position never changes the order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moodboard.rank.inputs import HEADS, MultiHeadInputs

_log = logging.getLogger(__name__)

#: Action codes 0 (pad) .. 5 (hide).
N_ACTIONS = len(HEADS) + 1


@dataclass(frozen=True)
class Batch:
    """A ``MultiHeadInputs`` slice as tensors (history cut to the model's ``max_history``)."""

    history_items: torch.Tensor
    history_actions: torch.Tensor
    history_age_s: torch.Tensor
    item: torch.Tensor
    dense: torch.Tensor
    position: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def of(cls, x: MultiHeadInputs, max_history: int, rows: np.ndarray | None = None) -> Batch:
        """Rows ``rows`` (default all) of ``x``."""

        def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            a = np.asarray(a)
            return torch.as_tensor(a if rows is None else a[rows]).to(dtype)

        n = max_history
        return cls(
            t(np.asarray(x.history_items)[:, :n], torch.long),
            t(np.asarray(x.history_actions)[:, :n], torch.long),
            t(np.asarray(x.history_age_s)[:, :n], torch.float32),
            t(x.item, torch.long),
            t(x.dense, torch.float32),
            t(x.position, torch.long),
            t(x.labels, torch.float32),
        )


class ItemEmbedding(nn.Module):
    """Item vectors from ids and the fixed content table.

    Parameters
    ----------
    n_items
        Items with an id vector (``0 .. n_items - 1``); row ``n_items`` is out-of-vocabulary.
    content_dim
        Width of the content table (0: none).
    dim
        Output width.
    id_dropout
        Share of ids replaced by the out-of-vocabulary row in training.
    """

    def __init__(self, n_items: int, content_dim: int, dim: int, id_dropout: float) -> None:
        super().__init__()
        self.n_items, self.id_dropout = n_items, id_dropout
        self.ids = nn.Embedding(n_items + 1, dim)
        nn.init.normal_(self.ids.weight, std=0.05)
        self.project = nn.Linear(content_dim, dim) if content_dim else None
        self.register_buffer("content", torch.zeros(0, content_dim), persistent=False)

    def set_content(self, content: np.ndarray | None) -> None:
        """Use ``content`` (``[n, content_dim]``, rows are catalog indices) as the fixed table."""
        if self.project is None:
            return
        c = torch.as_tensor(np.asarray(content, dtype=np.float32))
        self.content = F.normalize(c, dim=-1)  # every vector on the same scale

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``idx.shape + (dim,)`` learned vectors and ``idx.shape + (content_dim,)`` content
        vectors (unit length; zeros for padding ``-1`` and items without content)."""
        flat = idx.reshape(-1)
        uniq, inverse = torch.unique(flat, return_inverse=True)  # a user's history repeats
        oov = uniq >= self.n_items
        if self.training and self.id_dropout > 0:
            oov = oov | (torch.rand(uniq.shape) < self.id_dropout)
        v = self.ids(torch.where(oov | (uniq < 0), self.n_items, uniq))
        c = torch.zeros(len(uniq), self.content.shape[1])
        if self.project is not None:
            known = (uniq >= 0) & (uniq < len(self.content))
            c[known] = self.content[uniq[known]]
            v = v + self.project(c)
        v = v * (uniq >= 0).unsqueeze(-1)
        return v[inverse].reshape(*idx.shape, -1), c[inverse].reshape(*idx.shape, -1)


def similarity(cand: torch.Tensor, hist: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``(B, 2)``: the largest and the mean dot product of each candidate vector ``(B, d)``
    with the real rows of its history ``(B, N, d)`` (0 without history)."""
    if hist.shape[1] == 0:
        return torch.zeros(len(cand), 2)
    dots = (hist * cand.unsqueeze(1)).sum(-1)
    top = dots.masked_fill(~real, float("-inf")).amax(1)
    top = torch.where(real.any(1), top, torch.zeros_like(top))
    return torch.stack([top, (dots * real).sum(1) / real.sum(1).clamp(min=1)], dim=1)


class ActionSequence(nn.Module):
    """TransAct-style: the action sequence encoded once, attended by the candidate.

    Parameters
    ----------
    dim, heads, ff_dim, dropout
        The encoder layer and the target attention.
    gap_buckets
        Time-gap buckets: ``floor(log2(1 + seconds))``, the last one open-ended.
    """

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, gap_buckets: int) -> None:
        super().__init__()
        self.gap_buckets = gap_buckets
        self.actions = nn.Embedding(N_ACTIONS, dim, padding_idx=0)
        self.gaps = nn.Embedding(gap_buckets, dim)
        self.encoder = nn.TransformerEncoderLayer(
            dim, heads, ff_dim, dropout, batch_first=True, norm_first=True
        )
        self.empty = nn.Parameter(torch.zeros(1, 1, dim))
        self.attend = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        cand: torch.Tensor,
        items: torch.Tensor,
        ids: torch.Tensor,
        actions: torch.Tensor,
        age: torch.Tensor,
    ) -> torch.Tensor:
        """``(B, dim)``: what the history says about each candidate ``cand`` ``(B, dim)``.

        ``items`` ``(B, N, dim)`` are the vectors of the history's items ``ids`` ``(B, N)``,
        ``actions`` ``(B, N)`` the codes (0 pad), ``age`` ``(B, N)`` the seconds before the
        impression.
        """
        b = len(cand)
        real = actions > 0
        gap = torch.log2(1.0 + age.clamp(min=0)).floor().long().clamp(0, self.gap_buckets - 1)
        gap = gap * real
        tokens = items + self.actions(actions) + self.gaps(gap) * real.unsqueeze(-1)
        # rows with the same history (one user's candidates at serving) are encoded once
        if self.training:
            enc = self._encode(tokens, real)
        else:
            enc = self._encode_unique(tokens, real, torch.cat([ids, actions, gap], 1))
        memory = torch.cat([self.empty.expand(b, 1, -1), enc], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool), ~real], dim=1)
        out, _ = self.attend(cand.unsqueeze(1), memory, memory, key_padding_mask=pad)
        return self.norm(out.squeeze(1))

    def _encode_unique(
        self, tokens: torch.Tensor, real: torch.Tensor, key: torch.Tensor
    ) -> torch.Tensor:
        b = len(tokens)
        uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
        if len(uniq) < b:
            first = torch.empty(len(uniq), dtype=torch.long).scatter_(0, inverse, torch.arange(b))
            return self._encode(tokens[first], real[first])[inverse]
        return self._encode(tokens, real)

    def _encode(self, tokens: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] == 0:
            return tokens
        # a row without history attends to its first slot alone (no all-masked row: NaN)
        pad = ~real
        pad[:, 0] = False
        return self.encoder(tokens, src_key_padding_mask=pad)


class MMoE(nn.Module):
    """Multi-gate mixture of experts: shared experts, a softmax gate per task."""

    def __init__(
        self, d_in: int, experts: int, expert_dim: int, tasks: Sequence[str], dropout: float
    ) -> None:
        super().__init__()
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(d_in, expert_dim), nn.ReLU(), nn.Dropout(dropout))
            for _ in range(experts)
        )
        self.gates = nn.ModuleDict({t: nn.Linear(d_in, experts) for t in tasks})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's ``(B, expert_dim)`` mixture."""
        e = torch.stack([expert(x) for expert in self.experts], dim=1)
        return {
            t: (torch.softmax(g(x), dim=-1).unsqueeze(-1) * e).sum(1) for t, g in self.gates.items()
        }


class MultiHeadNet(nn.Module):
    """Item and sequence embeddings -> MMoE -> one tower and logit head per action.

    Parameters
    ----------
    n_items, content_dim, n_dense
        The catalog's ids, the content table's width, the dense features' count.
    dim, heads, ff_dim, gap_buckets
        Embedding width and the sequence module.
    experts, expert_dim, tower_dim
        The MMoE and the towers.
    max_position
        Positions with their own bias (later ones share the last).
    sequence
        False: the ablation without the action sequence.
    dropout, id_dropout
        Training regularization.
    """

    def __init__(
        self,
        n_items: int,
        content_dim: int,
        n_dense: int,
        dim: int,
        heads: int,
        ff_dim: int,
        gap_buckets: int,
        experts: int,
        expert_dim: int,
        tower_dim: int,
        max_position: int,
        sequence: bool = True,
        dropout: float = 0.1,
        id_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.max_position = max_position
        self.items = ItemEmbedding(n_items, content_dim, dim, id_dropout)
        self.sequence = (
            ActionSequence(dim, heads, ff_dim, dropout, gap_buckets) if sequence else None
        )
        self.register_buffer("dense_mean", torch.zeros(n_dense))
        self.register_buffer("dense_std", torch.ones(n_dense))
        # sequence: its summary, its product with the candidate, 4 similarities
        d_in = (3 * dim + 4 if sequence else dim) + n_dense
        self.mmoe = MMoE(d_in, experts, expert_dim, HEADS, dropout)
        self.towers = nn.ModuleDict(
            {h: nn.Sequential(nn.Linear(expert_dim, tower_dim), nn.ReLU()) for h in HEADS}
        )
        self.heads = nn.ModuleDict({h: nn.Linear(tower_dim, 1) for h in HEADS})
        self.position_bias = nn.Embedding(max_position + 1, len(HEADS))
        nn.init.zeros_(self.position_bias.weight)

    def forward(self, batch: Batch, use_position: bool = False) -> torch.Tensor:
        """``(B, 5)`` logits in ``HEADS`` order; position 1 for every row unless
        ``use_position`` (training)."""
        cand, cand_content = self.items(batch.item)
        dense = (batch.dense - self.dense_mean) / self.dense_std
        parts = [cand]
        if self.sequence is not None:
            hist, hist_content = self.items(batch.history_items)
            s = self.sequence(
                cand, hist, batch.history_items, batch.history_actions, batch.history_age_s
            )
            real = batch.history_actions > 0
            parts += [
                s,
                cand * s,
                similarity(cand, hist, real),
                similarity(cand_content, hist_content, real),
            ]
        parts.append(dense.nan_to_num(0.0).clamp(-10.0, 10.0))
        mixed = self.mmoe(torch.cat(parts, dim=-1))
        logits = torch.cat([self.heads[h](self.towers[h](mixed[h])) for h in HEADS], dim=-1)
        pos = batch.position.clamp(1, self.max_position) if use_position else None
        if pos is None:
            return logits + self.position_bias.weight[1]
        return logits + self.position_bias(pos)
