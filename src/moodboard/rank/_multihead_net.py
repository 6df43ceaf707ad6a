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

    def forward(self, idx: torch.Tensor) -> Embedded:
        """The learned and content vectors of the distinct items among ``idx`` (any shape)."""
        uniq, inverse = torch.unique(idx, return_inverse=True)  # a user's history repeats
        oov = uniq >= self.n_items
        if self.training and self.id_dropout > 0:
            oov = oov | (torch.rand(uniq.shape) < self.id_dropout)
        v = self.ids(torch.where(oov | (uniq < 0), self.n_items, uniq))
        c = torch.zeros(len(uniq), self.content.shape[1])
        if self.project is not None:
            known = (uniq >= 0) & (uniq < len(self.content))
            c[known] = self.content[uniq[known]]
            v = v + self.project(c)
        return Embedded(v * (uniq >= 0).unsqueeze(-1), c, inverse)


@dataclass(frozen=True)
class Embedded:
    """Vectors of distinct items and where each input position finds its row.

    ``vectors`` ``(U, dim)`` learned (zeros for padding), ``content`` ``(U, content_dim)`` unit
    content vectors (zeros for padding and items without content), ``inverse`` the input's
    shape of row indices.
    """

    vectors: torch.Tensor
    content: torch.Tensor
    inverse: torch.Tensor

    def rows(self) -> torch.Tensor:
        """The learned vectors in the input's shape ``+ (dim,)``."""
        return self.vectors[self.inverse]


def _dots(a: torch.Tensor, ia: torch.Tensor, b: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` dot products of ``a[ia]`` ``(B,)`` with ``b[ib]`` ``(B or 1, N)``: through
    the distinct items' products when fewer (one user's page), else row by row."""
    if len(a) * len(b) <= len(ia) * ib.shape[-1]:
        return (a @ b.T)[ia.unsqueeze(1), ib]
    return (b[ib] * a[ia].unsqueeze(1)).sum(-1)


def similarity(cand: Embedded, hist: Embedded, real: torch.Tensor) -> torch.Tensor:
    """``(B, 4)``: the largest and the mean dot product of each candidate with the real rows
    of its history (``real`` ``(B or 1, N)``), of the learned and of the content vectors (0
    without history)."""
    if real.shape[1] == 0:
        return torch.zeros(len(cand.inverse), 4)
    out = []
    for a, b in ((cand.vectors, hist.vectors), (cand.content, hist.content)):
        dots = _dots(a, cand.inverse, b, hist.inverse)
        top = dots.masked_fill(~real, float("-inf")).amax(1)
        out += [torch.where(real.any(1), top, torch.zeros_like(top))]
        out += [(dots * real).sum(1) / real.sum(1).clamp(min=1)]
    return torch.stack(out, dim=1)


class TargetAttention(nn.Module):
    """Multi-head attention of each candidate over a memory shared by all rows or per row."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.value, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, cand: torch.Tensor, memory: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``(B, dim)``; ``memory`` ``(M, L, dim)`` with ``M`` 1 or ``B``, ``pad`` ``(M, L)``
        True where a slot is padding (never a whole row)."""
        b, (m, n, d) = len(cand), memory.shape
        h = self.heads
        q = self.query(cand).view(b, h, d // h)
        k = self.key(memory).view(m, n, h, d // h)
        v = self.value(memory).view(m, n, h, d // h)
        if m == 1:  # one user's page: keys and values once
            scores = torch.einsum("bhd,nhd->bhn", q, k[0])
        else:
            scores = torch.einsum("bhd,bnhd->bhn", q, k)
        scores = (scores / (d // h) ** 0.5).masked_fill(pad.unsqueeze(1), float("-inf"))
        w = torch.softmax(scores, dim=-1)
        if m == 1:
            out = torch.einsum("bhn,nhd->bhd", w, v[0])
        else:
            out = torch.einsum("bhn,bnhd->bhd", w, v)
        return self.out(out.reshape(b, d))


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
        self.attend = TargetAttention(dim, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, cand: torch.Tensor, items: torch.Tensor, actions: torch.Tensor, age: torch.Tensor
    ) -> torch.Tensor:
        """``(B, dim)``: what the history says about each candidate ``cand`` ``(B, dim)``.

        ``items`` ``(M, N, dim)`` are the history's item vectors, ``actions`` ``(M, N)`` the
        codes (0 pad), ``age`` ``(M, N)`` the seconds before the impression; ``M`` is ``B``,
        or 1 when every candidate shares one history (one user's page).
        """
        real = actions > 0
        gap = torch.log2(1.0 + age.clamp(min=0)).floor().long().clamp(0, self.gap_buckets - 1)
        tokens = items + self.actions(actions) + self.gaps(gap) * real.unsqueeze(-1)
        enc = tokens
        if tokens.shape[1]:
            # a row without history attends to its first slot alone (all-masked rows: NaN)
            pad = ~real
            pad[:, 0] = False
            enc = self.encoder(tokens, src_key_padding_mask=pad)
        m = len(tokens)
        memory = torch.cat([self.empty.expand(m, 1, -1), enc], dim=1)
        pad = torch.cat([torch.zeros(m, 1, dtype=torch.bool), ~real], dim=1)
        return self.norm(self.attend(cand, memory, pad))


class MMoE(nn.Module):
    """Multi-gate mixture of experts: shared experts, a softmax gate per task.

    Each expert and each gate is its own ``nn.Linear``; the forward pass runs all experts as
    one product and all gates as one (the same numbers, a third of the calls at serving).
    """

    def __init__(
        self, d_in: int, experts: int, expert_dim: int, tasks: Sequence[str], dropout: float
    ) -> None:
        super().__init__()
        self.dropout = dropout
        self.experts = nn.ModuleList(nn.Linear(d_in, expert_dim) for _ in range(experts))
        self.gates = nn.ModuleDict({t: nn.Linear(d_in, experts) for t in tasks})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, tasks, expert_dim)``: each task's mixture, tasks in the gates' order."""
        b, n = len(x), len(self.experts)
        e = F.linear(
            x,
            torch.cat([m.weight for m in self.experts]),
            torch.cat([m.bias for m in self.experts]),
        )
        e = F.dropout(F.relu(e), self.dropout, self.training).view(b, n, -1)
        g = F.linear(
            x,
            torch.cat([m.weight for m in self.gates.values()]),
            torch.cat([m.bias for m in self.gates.values()]),
        )
        return torch.bmm(torch.softmax(g.view(b, -1, n), dim=-1), e)


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log1p(|x|)``: heavy tails (counts) shrunk, small values almost kept."""
    return torch.sign(x) * torch.log1p(x.abs())


def _shared(*history: torch.Tensor) -> bool:
    """Whether every row has the first row's history."""
    return len(history[0]) > 1 and all(bool((h == h[0]).all()) for h in history)


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
    log_dense
        Read the dense features through ``symlog`` before standardizing them (counts are
        heavy-tailed).
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
        log_dense: bool = False,
    ) -> None:
        super().__init__()
        self.max_position, self.log_dense = max_position, log_dense
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
        item = self.items(batch.item)
        cand = item.rows()
        raw = symlog(batch.dense) if self.log_dense else batch.dense
        dense = (raw - self.dense_mean) / self.dense_std
        parts = [cand]
        if self.sequence is not None:
            ids, actions, age = batch.history_items, batch.history_actions, batch.history_age_s
            if not self.training and _shared(ids, actions, age):
                ids, actions, age = ids[:1], actions[:1], age[:1]  # one user's page
            hist = self.items(ids)
            s = self.sequence(cand, hist.rows(), actions, age)
            parts += [s, cand * s, similarity(item, hist, actions > 0)]
        parts.append(dense.nan_to_num(0.0).clamp(-10.0, 10.0))
        mixed = self.mmoe(torch.cat(parts, dim=-1))  # (B, heads, expert_dim)
        logits = torch.cat(
            [self.heads[h](self.towers[h](mixed[:, j])) for j, h in enumerate(HEADS)], dim=-1
        )
        pos = batch.position.clamp(1, self.max_position) if use_position else None
        if pos is None:
            return logits + self.position_bias.weight[1]
        return logits + self.position_bias(pos)
