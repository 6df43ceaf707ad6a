"""``ranked``: the fused candidates re-ranked by LambdaMART, learned on the validation step.

For each user the fused top ``depth`` items (weighted RRF of the members' top lists, with the
weights tuned for ``fused``) are the candidates; ``rerank_features`` describes each one. The
ranker (LightGBM lambdarank, ``rank.LambdaMARTRanker``) learns from the validation step only:
the validation users whose target is among their candidates, a seeded ``holdout`` share of the
validation users kept apart to stop the boosting. The test step is then scored once, with its
features computed as the sources score it: the longer histories (the validation item
appended) and the members fitted for it (on the leave-one-out split, the same models and the
same training sequences as for validation; on a time split, the chosen configurations fitted
again on all data before the cutoff, and the statistics of that data).

``train_s`` of the re-ranker is its own: the statistics, the members' validation scores, the
features and the boosting (the members' and the fusion's fitting is theirs); ``eval_s`` is
the test step's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.build.fusion import FusionTable, exclude_histories, rank_metrics
from moodboard.evaluate.rec_protocol import RecSplit, Step
from moodboard.evaluate.rerank_features import (
    ItemStats,
    candidate_features,
    feature_names,
    unit_vectors,
)
from moodboard.rank import LambdaMARTConfig, LambdaMARTRanker
from moodboard.retrieve import CandidateSource, TrainingData

_log = logging.getLogger(__name__)


class RerankConfig(BaseModel):
    """Parameters of the ``ranked`` method.

    Attributes
    ----------
    depth
        Fused candidates re-ranked per user.
    holdout
        Share of the validation users held out of the ranker's training to stop it early.
    early_stopping
        Trees without a better held-out NDCG@10 before the boosting stops.
    window
        Co-occurrence window of the ``window_*`` features (events apart).
    last_item
        The members whose scores given the user's last item alone are features too.
    batch_users
        Users whose features are built at once.
    ltr
        The LambdaMART parameters (binary labels: the target or not).
    seed
        Seeds the holdout.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int = Field(default=200, ge=10)
    holdout: float = Field(default=0.15, gt=0.0, lt=1.0)
    early_stopping: int = Field(default=50, ge=1)
    window: int = Field(default=3, ge=1)
    last_item: tuple[str, ...] = ("sequence",)
    batch_users: int = Field(default=1024, ge=1)
    ltr: LambdaMARTConfig = LambdaMARTConfig(
        n_estimators=1000,
        learning_rate=0.05,
        num_leaves=63,
        min_data_in_leaf=100,
        feature_fraction=0.8,
        bagging_fraction=0.8,
        label_levels=2,
        # one thread: with two, OpenMP's waiting threads slow the boosting 4-8 times on a
        # machine with other jobs on its cores (measured on this 2-core machine)
        threads=1,
    )
    seed: int = 0


@dataclass(frozen=True)
class Member:
    """A fused member: its top lists and fitted models for the validation and the test step."""

    name: str
    lists: tuple[np.ndarray, np.ndarray]
    models: tuple[CandidateSource, CandidateSource]


@dataclass
class RerankResult:
    """Test metrics, held-out validation NDCG@10 (``ranked`` and ``fused`` on the same
    users), the re-ranker's own training and test time, and what it learned."""

    test: dict[str, float]
    valid: dict[str, float]
    train_s: float
    eval_s: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class _Batch:
    rows: np.ndarray  # the batch's users (step rows)
    cands: np.ndarray  # (n, depth) items, -1 padding
    x: np.ndarray  # (n * depth, n_features)


def _scored(
    model: CandidateSource, histories: Sequence[np.ndarray], cands: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The member's scores (histories excluded), its scores of the candidates, and each
    user's best score and z-score of the candidates over the user's ranked items."""
    s = exclude_histories(np.asarray(model.score(histories), dtype=np.float32), histories)
    finite = np.isfinite(s)
    n = np.maximum(finite.sum(1), 1)
    mean = s.sum(1, where=finite, dtype=np.float64) / n
    sq = np.square(s, where=finite, out=np.zeros_like(s)).sum(1, dtype=np.float64)
    std = np.sqrt(np.maximum(sq / n - mean**2, 0.0))
    score = s[np.arange(len(cands))[:, None], np.maximum(cands, 0)].astype(np.float64)
    z = (score - mean[:, None]) / np.where(std > 0, std, 1.0)[:, None]
    return s, score, s.max(1, where=finite, initial=-np.inf), z


def member_columns(
    model: CandidateSource,
    histories: Sequence[np.ndarray],
    cands: np.ndarray,
    top: np.ndarray,
    last_item: bool = False,
) -> dict[str, np.ndarray]:
    """One member's ``MEMBER_COLUMNS`` for a batch: its scores of the candidates (history
    excluded), their gap to its best score, their z-score over the user's ranked items, and
    their 1-based position in its top list ``top`` (NaN and ``proposed`` 0 when absent);
    with ``last_item``, also its score and z-score of them given the last item alone."""
    s, score, best, z = _scored(model, histories, cands)
    positions = np.zeros(s.shape, dtype=np.int32)
    r, p = np.nonzero(top >= 0)
    positions[r, top[r, p]] = p + 1
    pos = positions[np.arange(len(cands))[:, None], np.maximum(cands, 0)].astype(np.float64)
    out = {
        "score": score,
        "gap": score - best[:, None],
        "z": z,
        "position": np.where(pos > 0, pos, np.nan),
        "proposed": (pos > 0).astype(np.float64),
    }
    if last_item:
        _, out["last_score"], _, out["last_z"] = _scored(
            model, [np.asarray(h)[-1:] for h in histories], cands
        )
    return out


class _Step:
    """The candidates of one step and the batches of their features."""

    def __init__(
        self,
        step: Step,
        data: TrainingData,
        members: Sequence[Member],
        which: int,
        choice: tuple[Sequence[float], float],
        config: RerankConfig,
    ) -> None:
        self.step, self.which, self.config = step, which, config
        self.members = members
        table = FusionTable.build([m.lists[which] for m in members], step.targets, data.n_items)
        self.cands, self.fused = table.top(choice[0], choice[1], config.depth)
        self.stats = ItemStats.build(data, config.window)
        self.vectors = {
            m.name: v for m in members if (v := unit_vectors(m.models[which])) is not None
        }

    def names(self) -> list[str]:
        last = self.config.last_item
        return feature_names({m.name: m.name in last for m in self.members}, list(self.vectors))

    def labels(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), depth)``: 1 where the candidate is one of the user's targets."""
        cands = self.cands[rows]
        return np.stack(
            [np.isin(cands[j], self.step.targets[r]) for j, r in enumerate(rows)]
        ).astype(np.int32)

    def batches(self, rows: np.ndarray) -> Iterator[_Batch]:
        b = self.config.batch_users
        for lo in range(0, len(rows), b):
            part = rows[lo : lo + b]
            hist = [self.step.histories[r] for r in part]
            cands = self.cands[part]
            cols = {
                m.name: member_columns(
                    m.models[self.which],
                    hist,
                    cands,
                    m.lists[self.which][part],
                    m.name in self.config.last_item,
                )
                for m in self.members
            }
            x = candidate_features(self.stats, hist, cands, self.fused[part], cols, self.vectors)
            yield _Batch(part, cands, x)


def _target_ranks(
    scores: np.ndarray, cands: np.ndarray, targets: Sequence[np.ndarray], n_items: int
) -> list[np.ndarray]:
    """0-based rank of each target among its row's candidates by ``scores`` (ties: the fused
    order), ``n_items`` when it is not a candidate."""
    s = np.where(cands >= 0, scores, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    ranked = np.take_along_axis(cands, order, axis=1)
    out = []
    for r, t in enumerate(targets):
        hit = ranked[r][:, None] == np.asarray(t)[None, :]
        at = np.where(hit.any(0), hit.argmax(0), n_items)
        out.append(at.astype(np.int64))
    return out


def _ranked_metrics(
    ranker: LambdaMARTRanker, step: _Step, rows: np.ndarray, ks: Sequence[int], n_items: int
) -> dict[str, float]:
    per_user: dict[str, list[np.ndarray]] = {}
    for b in step.batches(rows):
        s = ranker.predict(b.x).reshape(b.cands.shape)
        ranks = _target_ranks(s, b.cands, [step.step.targets[r] for r in b.rows], n_items)
        for k, v in rank_metrics(ranks, ks).items():
            per_user.setdefault(k, []).append(v)
    return {k: float(np.concatenate(v).mean()) for k, v in per_user.items()}


def _fused_ndcg(step: _Step, rows: np.ndarray, n_items: int) -> float:
    """The fused order's NDCG@10 of these users."""
    order = -np.tile(np.arange(step.cands.shape[1], dtype=np.float64), (len(rows), 1))
    targets = [step.step.targets[r] for r in rows]
    ranks = _target_ranks(order, step.cands[rows], targets, n_items)
    return float(rank_metrics(ranks, (10,))["ndcg@10"].mean())


def _training_rows(step: _Step, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Features, labels and group sizes of the users of ``rows`` with a target among their
    candidates (the others teach lambdarank nothing)."""
    xs, ys, groups = [], [], []
    for b in step.batches(rows):
        y = step.labels(b.rows)
        depth = b.cands.shape[1]
        for j in np.flatnonzero(y.any(1)):
            keep = b.cands[j] >= 0
            xs.append(b.x[j * depth : (j + 1) * depth][keep])
            ys.append(y[j][keep])
            groups.append(int(keep.sum()))
    width = len(step.names())
    if not xs:
        return np.zeros((0, width), np.float32), np.zeros(0, np.int32), []
    return np.concatenate(xs), np.concatenate(ys), groups


def rerank(
    split: RecSplit,
    members: Sequence[Member],
    choice: tuple[Sequence[float], float],
    config: RerankConfig | None = None,
) -> RerankResult:
    """Learn the re-ranker on the validation step and measure it once on the test step.

    Parameters
    ----------
    split
        The evaluation split.
    members
        The fused members in the fusion's order, with their lists and models.
    choice
        The fusion's tuned ``(weights, rrf_k)``.
    config
        Defaults to ``RerankConfig()``.
    """
    cfg = config or RerankConfig()
    n_items = split.train.n_items
    t0 = time.perf_counter()
    valid = _Step(split.valid, split.train, members, 0, choice, cfg)
    users = np.random.default_rng(cfg.seed).permutation(len(split.valid))
    n_hold = max(1, round(cfg.holdout * len(users)))
    held, fit_rows = np.sort(users[:n_hold]), np.sort(users[n_hold:])
    x, y, g = _training_rows(valid, fit_rows)
    hx, hy, hg = _training_rows(valid, held)
    ranker = LambdaMARTRanker(cfg.ltr, valid.names())
    ranker.fit_labels(x, y, g, valid=(hx, hy, hg), early_stopping=cfg.early_stopping)
    del x, y, hx, hy
    train_s = time.perf_counter() - t0
    held_ndcg = _ranked_metrics(ranker, valid, held, (10,), n_items)["ndcg@10"]
    fused_ndcg = _fused_ndcg(valid, held, n_items)
    _log.info("ranked: held-out validation NDCG@10 %.4f (fused %.4f)", held_ndcg, fused_ndcg)
    t1 = time.perf_counter()
    test = _Step(split.test, split.test_train or split.train, members, 1, choice, cfg)
    metrics = _ranked_metrics(ranker, test, np.arange(len(split.test)), split.ks, n_items)
    top = sorted(ranker.importance().items(), key=lambda kv: -kv[1])[:10]
    return RerankResult(
        test=metrics,
        valid={"ndcg@10": held_ndcg, "fused_ndcg@10": fused_ndcg},
        train_s=train_s,
        eval_s=time.perf_counter() - t1,
        params={
            "depth": cfg.depth,
            "trees": ranker.best_iteration,
            "training_users": len(g),
            "holdout_users": len(held),
            "top_features": [k for k, _ in top],
        },
    )
