"""The networks and the Trainer of the ``sequence`` source: a SASRec-style transformer.

Items are embedded with an id vector (plus, optionally, the mean of their attribute vectors);
a stack of pre-norm causal self-attention blocks reads the last ``max_len`` items with learned
positions counted back from the most recent one; the state at each position scores every item
by a dot product with the same item table (tied input/output embeddings). The Trainer
(``_sasrec_train``) fits it.

Inside this module item ``0`` is padding and the caller's item ``i`` is row ``i + 1``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_log = logging.getLogger(__name__)


class ItemTable(nn.Module):
    """The item vectors: an id embedding plus, optionally, the mean of attribute embeddings.

    Parameters
    ----------
    n_items
        Real items; the table has ``n_items + 1`` rows, row 0 is padding.
    dim
        Vector size.
    attributes
        ``(n_items + 1, max_attributes)`` attribute indices (``0`` = none), or None.
    n_attributes
        Attribute vocabulary size (excluding the ``0`` slot).
    """

    def __init__(
        self, n_items: int, dim: int, attributes: torch.Tensor | None, n_attributes: int
    ) -> None:
        super().__init__()
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.attributes: nn.Embedding | None = None
        if attributes is not None and n_attributes > 0:
            self.register_buffer("attribute_index", attributes.long())
            self.attributes = nn.Embedding(n_attributes + 1, dim, padding_idx=0)

    def forward(self) -> torch.Tensor:
        """The full ``(n_items + 1, dim)`` table."""
        return self.rows(None)

    def table(self) -> torch.Tensor:
        """The full table; in inference mode, kept between calls while the weights are the
        same (a parameter's version moves with every in-place change: an optimizer step, a
        ``load_state_dict``)."""
        if self.training or not torch.is_inference_mode_enabled():
            return self.rows(None)
        params = (
            [self.ids.weight]
            if self.attributes is None
            else [self.ids.weight, self.attributes.weight]
        )
        key = tuple((id(p), p._version) for p in params)
        kept = self.__dict__.get("_kept")
        if kept is None or kept[0] != key:
            kept = self.__dict__["_kept"] = (key, self.rows(None))
        return kept[1]

    def rows(self, idx: torch.Tensor | None) -> torch.Tensor:
        """The vectors of rows ``idx`` (any shape, + ``(dim,)``); None: the full table."""
        vec = self.ids.weight if idx is None else self.ids(idx)
        if self.attributes is not None:
            a = self.attribute_index if idx is None else self.attribute_index[idx]
            count = (a > 0).sum(-1, keepdim=True).clamp(min=1)
            vec = vec + self.attributes(a).sum(-2) / count
        return vec


class CausalBlock(nn.Module):
    """Pre-norm multi-head self-attention + feed-forward, each with a residual."""

    def __init__(self, dim: int, heads: int, inner: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.p = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, inner), nn.GELU(), nn.Dropout(dropout), nn.Linear(inner, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, L, D)``; ``mask`` ``(B, 1, L, L)`` True where a query may attend."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.p if self.training else 0.0,
        )
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class SASRec(nn.Module):
    """Causal transformer over item sequences with tied item embeddings.

    Parameters
    ----------
    n_items, dim, attributes, n_attributes
        The item table (see :class:`ItemTable`).
    n_layers, heads, inner, dropout
        The attention blocks.
    max_len
        Longest history read; positions are learned, counted back from the most recent item.
    """

    def __init__(
        self,
        n_items: int,
        dim: int,
        n_layers: int,
        heads: int,
        inner: int,
        dropout: float,
        max_len: int,
        attributes: torch.Tensor | None = None,
        n_attributes: int = 0,
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.items = ItemTable(n_items, dim, attributes, n_attributes)
        self.positions = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            CausalBlock(dim, heads, inner, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.apply(_init)

    def forward(self, seq: torch.Tensor, vectors: torch.Tensor | None = None) -> torch.Tensor:
        """States ``(B, L, D)`` of left-padded ``seq`` ``(B, L <= max_len)`` (0 = padding).

        ``vectors`` are the item vectors of ``seq`` when the caller already has them.
        """
        n = seq.shape[1]
        vectors = self.items.rows(seq) if vectors is None else vectors
        pos = torch.arange(self.max_len - n, self.max_len, device=seq.device)
        x = self.drop(vectors + self.positions(pos))
        real = seq > 0
        causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
        # a padding position attends to itself only (a fully masked row would give NaN)
        mask = (causal & real[:, None, :]) | torch.eye(n, dtype=torch.bool, device=seq.device)
        mask = mask[:, None]
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x)

    def last_state(self, seq: torch.Tensor) -> torch.Tensor:
        """The user state ``(B, D)``: the state at the last (most recent) position."""
        return self(seq)[:, -1]

    def scores(self, state: torch.Tensor) -> torch.Tensor:
        """``(B, n_items)`` scores of the real items (padding row left out)."""
        return state @ self.items.table()[1:].T


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear | nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            with torch.no_grad():
                m.weight[m.padding_idx].zero_()


def left_pad(histories: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """``(n, w)`` int64, the last ``max_len`` items of each history right-aligned, 0-padded.

    ``w`` is the longest (cut) history, at least 1.
    """
    w = max(1, min(max_len, max((len(h) for h in histories), default=1)))
    out = np.zeros((len(histories), w), dtype=np.int64)
    for i, h in enumerate(histories):
        h = np.asarray(h)[-w:]
        if len(h):
            out[i, w - len(h) :] = h
    return out


def attribute_index(
    n_items: int, attributes: Sequence[Sequence[int]], cap: int
) -> tuple[torch.Tensor, int]:
    """``(n_items + 1, width)`` attribute indices per 1-based item row, and their count.

    ``attributes[i]`` holds the attribute ids (any ints) of 0-based item ``i``; items past the
    end of ``attributes`` have none. Ids are re-indexed densely from 1 (0 = none) and each item
    keeps at most ``cap`` of them.
    """
    rows = [[int(a) for a in attributes[i]][:cap] for i in range(min(n_items, len(attributes)))]
    vocab = {a: j + 1 for j, a in enumerate(sorted({a for r in rows for a in r}))}
    width = max(1, max((len(r) for r in rows), default=1))
    out = torch.zeros(n_items + 1, width, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            out[i + 1, : len(r)] = torch.tensor([vocab[a] for a in r])
    return out, len(vocab)


def describe(model: SASRec) -> dict[str, float]:
    """Parameter count and size, for logs and manifests."""
    n = sum(p.numel() for p in model.parameters())
    return {"parameters": n, "megabytes": round(n * 4 / 2**20, 2), "log10": math.log10(n)}
