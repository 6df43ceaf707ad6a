"""Features of the re-ranked candidates of ``moodboard evaluate recs`` (method ``ranked``).

One row per (user, candidate) of the fused top list, from three kinds of evidence:

- **the sources**: each member's score of the candidate, its gap to the member's best score
  for the user and its z-score over the user's ranked items, the candidate's position in the
  member's top list (NaN when the member did not propose it) and whether it proposed it; the
  fused score and position;
- **the training sequences** (``ItemStats``): the candidate's popularity, how often it is the
  last (or one of the last 3) items of a training sequence and its mean relative position in
  the sequences (the data has no timestamps: the end of the sequences is the recent past),
  and its co-occurrence with the user's last items: transition counts from the last two items
  (and back to the last one), windowed and whole-sequence co-occurrence with the last 3, the
  cosine of the whole-sequence counts, the shared item attributes;
- **the members' item vectors** (``item_vectors()``: the two-tower's item tower): the
  candidate's cosine with the user's last item and the mean over the last 3; and, for the
  members named in ``RerankConfig.last_item``, their score of the candidate given the user's
  last item alone (the sequence model's short-term view).

Every statistic comes from the ``TrainingData`` it is built on and the user's own history:
never from a step's target.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from moodboard.retrieve import CandidateSource, TrainingData
from moodboard.retrieve.baselines import interaction_matrix, window_counts

_log = logging.getLogger(__name__)

#: The user's last items the pair features read (``last_1`` is the most recent).
LAST = 3
#: The per-member columns, in this order, named ``<member>__<column>`` (``/`` -> ``_``).
MEMBER_COLUMNS = ("score", "gap", "z", "position", "proposed")
#: And for the members that score the last item alone (``RerankConfig.last_item``).
LAST_ITEM_COLUMNS = ("last_score", "last_z")
_ITEM = ("log_popularity", "tail_1", "tail_3", "mean_position")
_PAIR = (
    "trans_1",
    "trans_2",
    "trans_back_1",
    "trans_prob_1",
    "window_1",
    "window_2",
    "window_3",
    "cooc_sum",
    "cooc_max",
    "cosine_max",
    "cosine_sum_10",
    "attr_1",
    "attr_sum",
)


@dataclass(frozen=True, eq=False)
class ItemStats:
    """Counts of the training sequences about items and item pairs.

    Attributes
    ----------
    popularity
        Events per item.
    tail
        ``(n_items, 2)``: how often the item is the last item of a sequence, one of the last 3.
    mean_position
        The item's mean position ``i / (len - 1)`` in the sequences (0: first, 1: last; NaN
        when never seen).
    transitions
        ``a -> b``: how often ``b`` directly follows ``a``.
    window
        Symmetric counts of the pairs at most ``window`` events apart (``1 / distance`` each).
    cooc
        Users whose sequence holds both items (diagonal zero).
    attributes
        ``(n_items, n_attributes)`` binary (``item_features["attributes"]``), None without.
    """

    popularity: np.ndarray
    tail: np.ndarray
    mean_position: np.ndarray
    transitions: sp.csr_matrix
    window: sp.csr_matrix
    cooc: sp.csr_matrix
    attributes: sp.csr_matrix | None

    @classmethod
    def build(cls, data: TrainingData, window: int = 3) -> ItemStats:
        """The statistics of ``data``'s sequences (and its attributes, when it has them)."""
        n = int(data.n_items)
        seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
        flat = np.concatenate([*seqs, np.zeros(0, np.int64)])
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        from_end = np.concatenate([np.arange(k)[::-1] for k in lens] or [np.zeros(0, np.int64)])
        rel = np.concatenate(
            [np.arange(k) / max(k - 1, 1) for k in lens] or [np.zeros(0, np.float64)]
        )
        popularity = np.bincount(flat, minlength=n).astype(np.float64)
        tail = np.stack(
            [np.bincount(flat[from_end < k], minlength=n) for k in (1, LAST)], axis=1
        ).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_position = np.bincount(flat, weights=rel, minlength=n) / popularity
        x = interaction_matrix(seqs, n)
        cooc = (x.T @ x).tocsr()
        cooc.setdiag(0)
        cooc.eliminate_zeros()
        attributes = None
        raw = data.item_features.get("attributes")
        if raw is not None:
            lists = [np.asarray(r, dtype=np.int64) for r in raw]  # type: ignore[attr-defined]
            width = int(max((r.max() for r in lists if len(r)), default=-1)) + 1
            attributes = interaction_matrix(lists, width)
        _log.info("item statistics: %d items, %d co-occurring pairs", n, cooc.nnz)
        return cls(
            popularity=popularity,
            tail=tail,
            mean_position=mean_position,
            transitions=window_counts(seqs, n, 1, symmetric=False),
            window=window_counts(seqs, n, window),
            cooc=cooc,
            attributes=attributes,
        )


def pair_values(m: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``m[a, b]`` elementwise for index arrays of one shape; 0 where ``a`` or ``b`` < 0."""
    a, b = np.asarray(a), np.asarray(b)
    ok = (a >= 0) & (b >= 0)
    out = np.zeros(a.shape, dtype=np.float64)
    if ok.any():
        out[ok] = np.asarray(m[a[ok], b[ok]]).ravel()
    return out


def shared_attributes(a: sp.csr_matrix | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How many attributes items ``x`` and ``y`` share (broadcast; 0 where either is < 0 or
    without attributes)."""
    x, y = np.broadcast_arrays(x, y)
    out = np.zeros(x.shape, dtype=np.float64)
    ok = (x >= 0) & (y >= 0)
    if a is not None and ok.any():
        out[ok] = np.asarray(a[x[ok]].multiply(a[y[ok]]).sum(1)).ravel()
    return out


def last_items(histories: Sequence[np.ndarray], n: int) -> np.ndarray:
    """``(len(histories), n)``: each history's last ``n`` items, most recent first, ``-1``
    where the history is shorter."""
    out = np.full((len(histories), n), -1, dtype=np.int64)
    for r, h in enumerate(histories):
        tail = np.asarray(h, dtype=np.int64)[::-1][:n]
        out[r, : len(tail)] = tail
    return out


def feature_names(members: Mapping[str, bool], vectors: Sequence[str]) -> list[str]:
    """The columns of ``candidate_features`` for these members (name -> whether it scores
    the last item alone) and item-vector sources."""
    names = ["fused_score", "fused_position", "history_length", *_ITEM, *_PAIR]
    for m, last in members.items():
        names += [f"{_safe(m)}__{c}" for c in MEMBER_COLUMNS + LAST_ITEM_COLUMNS * last]
    names += [f"{_safe(v)}__{c}" for v in vectors for c in ("cosine_1", "cosine_mean_3")]
    return names


def _safe(name: str) -> str:
    """A source name as LightGBM accepts it in a feature name (``graph/walks``: graph_walks)."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def unit_vectors(model: CandidateSource) -> np.ndarray | None:
    """A source's ``item_vectors()`` scaled to unit length (the two-tower's item tower, the
    vector sources), None when it has none."""
    v = model.item_vectors()
    return None if v is None else _unit(v)


def _pair_block(
    stats: ItemStats, histories: Sequence[np.ndarray], cands: np.ndarray
) -> list[np.ndarray]:
    """The ``_PAIR`` columns, each ``cands.shape``."""
    last = last_items(histories, 10)
    c = np.where(cands >= 0, cands, -1)

    def at(m: sp.csr_matrix, j: int, back: bool = False) -> np.ndarray:
        a = np.broadcast_to(last[:, j : j + 1], c.shape)
        return pair_values(m, c, a) if back else pair_values(m, a, c)

    out_degree = np.asarray(stats.transitions.sum(1)).ravel()
    deg = np.where(last[:, :1] >= 0, out_degree[np.maximum(last[:, :1], 0)], 0.0)
    trans_1 = at(stats.transitions, 0)
    cooc = np.stack([at(stats.cooc, j) for j in range(last.shape[1])])
    pop = stats.popularity
    pl = np.where(last >= 0, pop[np.maximum(last, 0)], 0.0).T[:, :, None]
    pc = np.where(c >= 0, pop[np.maximum(c, 0)], 0.0)[None]
    cosine = np.where(cooc > 0, cooc / np.sqrt(np.maximum(pl * pc, 1.0)), 0.0)
    attr = [shared_attributes(stats.attributes, last[:, j : j + 1], c) for j in range(LAST)]
    return [
        trans_1,
        at(stats.transitions, 1),
        at(stats.transitions, 0, back=True),
        np.where(deg > 0, trans_1 / np.maximum(deg, 1.0), 0.0),
        *(at(stats.window, j) for j in range(LAST)),
        cooc[:LAST].sum(0),
        cooc[:LAST].max(0),
        cosine[:LAST].max(0),
        cosine.sum(0),
        attr[0],
        np.sum(attr, axis=0),
    ]


def candidate_features(
    stats: ItemStats,
    histories: Sequence[np.ndarray],
    cands: np.ndarray,
    fused: np.ndarray,
    members: Mapping[str, Mapping[str, np.ndarray]],
    vectors: Mapping[str, np.ndarray],
) -> np.ndarray:
    """The feature rows of a batch of users, ``(n_users * depth, n_features)`` float32.

    Parameters
    ----------
    stats
        The training sequences' statistics.
    histories
        The users' histories (oldest first), as the step scores them.
    cands, fused
        ``(n_users, depth)``: the fused top items (``-1`` padding) and their fused scores.
    members
        Member name -> ``MEMBER_COLUMNS`` (and ``LAST_ITEM_COLUMNS``) name -> ``(n_users,
        depth)`` values.
    vectors
        Source name -> unit item vectors ``(n_items, dim)``.

    Returns
    -------
    np.ndarray
        Rows in ``cands``' row-major order, columns as ``feature_names``; padding rows are
        included (the caller drops them).
    """
    n_users, depth = cands.shape
    c = np.maximum(cands, 0)
    lengths = np.fromiter((len(h) for h in histories), dtype=np.float64, count=n_users)
    position = np.broadcast_to(np.arange(1, depth + 1, dtype=np.float64), cands.shape)
    cols = [np.where(np.isfinite(fused), fused, 0.0), position]
    cols.append(np.broadcast_to(lengths[:, None], cands.shape))
    cols += [
        np.log1p(stats.popularity[c]),
        stats.tail[c, 0],
        stats.tail[c, 1],
        stats.mean_position[c],
    ]
    cols += _pair_block(stats, histories, cands)
    for m in members.values():
        cols += [m[k] for k in MEMBER_COLUMNS + LAST_ITEM_COLUMNS if k in m]
    last = last_items(histories, LAST)
    for v in vectors.values():
        lv = np.where((last >= 0)[:, :, None], v[np.maximum(last, 0)], 0.0)  # (n, LAST, dim)
        sims = np.einsum("ukd,uld->ulk", v[c], lv)  # (n, LAST, depth)
        n_last = np.maximum((last >= 0).sum(1), 1)[:, None]
        cols += [sims[:, 0], sims.sum(1) / n_last]
    x = np.stack([np.broadcast_to(col, cands.shape) for col in cols], axis=-1)
    return x.reshape(n_users * depth, -1).astype(np.float32)
