"""The build's feed steps: one per personalized recommender, then the feed's fusion.

The last item of up to ``FeedConfig.valid_users`` users with three or more interactions is
held out; ``two_tower``, ``sequence``, ``graph/walks`` and ``user_interests`` are trained on the
rest (``sequence`` also stops early on those held-out items). Each then ranks every item for
the held-out users (their own items excluded), and the weights of the feed's reciprocal-rank
fusion and its ``k`` are tuned on those lists (coordinate ascent on NDCG@10, as ``moodboard
evaluate recs`` tunes ``fused``). The models are served as trained: there is no refit, so the
held-out interactions are missing from training but present in the histories the feed reads.
The tuned fusion is written to the ``feed/fusion`` part with every member's validation NDCG@10.

The held-out split is made once per build (``feed_split``) and shared by the steps through the
build context, as are the members' validation lists the fusion step tunes on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from moodboard.build.context import BuildContext
from moodboard.build.fusion import (
    FusionTable,
    exclude_histories,
    rank_metrics,
    top_lists,
    tune_fusion,
)
from moodboard.build.steps import BuildStep
from moodboard.config import InterestsConfig
from moodboard.retrieve import CandidateSource, TrainingData
from moodboard.retrieve.item_features import attribute_codes
from moodboard.retrieve.registry import source_class
from moodboard.retrieve.sequence import attribute_lists

_log = logging.getLogger(__name__)

#: The candidate weights and RRF ``k`` values of the tuning.
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
RRF_KS = (60.0, 10.0)


def holdout(
    data: TrainingData, n_users: int, seed: int
) -> tuple[TrainingData, np.ndarray, list[np.ndarray], np.ndarray]:
    """Training data without the last item of up to ``n_users`` users with 3+ items; those
    users, their histories and their held-out items."""
    eligible = np.flatnonzero([len(s) >= 3 for s in data.sequences])
    held = np.sort(np.random.default_rng(seed).permutation(eligible)[:n_users])
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    weights = None if data.weights is None else [np.asarray(w) for w in data.weights]
    for u in held:
        seqs[u] = seqs[u][:-1]
        if weights is not None:
            weights[u] = weights[u][:-1]
    train = replace(data, sequences=seqs, weights=weights)
    targets = np.array([data.sequences[u][-1] for u in held], dtype=np.int64)
    return train, held, [seqs[u] for u in held], targets


def _interests_config(cfg: InterestsConfig, n_items: int) -> InterestsConfig:
    """``cfg`` with its embedding ``dim`` below the item count (a tiny catalog)."""
    top = max(2, n_items - 1)
    if cfg.dim <= top:
        return cfg
    _log.warning(
        "user_interests: dim %d is not below the %d items of this catalog; using %d",
        cfg.dim,
        n_items,
        top,
    )
    return cfg.model_copy(update={"dim": top})


def _top(model: CandidateSource, hist: list[np.ndarray], users: list[str], k: int) -> np.ndarray:
    out = []
    for lo in range(0, len(hist), 512):
        chunk = hist[lo : lo + 512]
        s = model.score(chunk, users=users[lo : lo + 512])
        out.append(top_lists(exclude_histories(np.array(s, dtype=np.float32), chunk), k))
    return np.concatenate(out) if out else np.empty((0, k), dtype=np.int32)


@dataclass(frozen=True)
class FeedSplit:
    """The recommenders' training data and the held-out users they are measured on."""

    data: TrainingData
    train: TrainingData
    held_users: list[str]
    histories: list[np.ndarray]
    targets: np.ndarray
    #: Each fitted member's validation top lists and NDCG@10, in training order.
    lists: dict[str, np.ndarray]
    alone: dict[str, float]

    @property
    def measured(self) -> bool:
        """Whether some users were held out (else nothing is measured nor tuned)."""
        return len(self.targets) > 0


def feed_split(ctx: BuildContext) -> FeedSplit | None:
    """The build's one held-out split of the users' sequences, made on first use; None when
    no user has two interactions (nothing to train)."""
    if "feed" in ctx.shared:
        return ctx.shared["feed"]
    cfg = ctx.settings.surfaces.feed
    users, seqs, weights = ctx.sequences
    split = None
    if any(len(s) >= 2 for s in seqs):
        catalog = ctx.catalog
        features: dict[str, Any] = {
            "text": ctx.text[0],
            "attributes": attribute_codes([catalog.category, *catalog.attributes.values()]),
        }
        if ctx.images is not None:
            features["image"] = ctx.images[0]
        data = TrainingData(len(catalog), seqs, features, weights, users, catalog)
        train, held, hist, targets = holdout(data, cfg.valid_users, cfg.sequence.seed)
        valid = (hist, targets) if len(held) else None
        train = replace(train, validation=valid)
        split = FeedSplit(data, train, [str(users[u]) for u in held], hist, targets, {}, {})
    ctx.shared["feed"] = split
    return split


class RecommenderStep(BuildStep):
    """One of the feed's recommenders, fitted on the held-out split and measured on it.

    Parameters
    ----------
    name
        Its registry name (``two_tower``, ``sequence``, ``graph/walks``, ``user_interests``).
    config
        Its config.
    """

    name: str  # type: ignore[misc]

    def __init__(self, name: str, config: Any, per_source: int = 200) -> None:
        self.name = name
        self.config = config
        self.per_source = per_source

    def message(self, ctx: BuildContext) -> str:
        return f"training {self.name} on user sequences"

    def fit(self, train: TrainingData) -> CandidateSource | None:
        """The recommender fitted on ``train`` (``sequence`` with early stopping on its
        validation); all but ``two_tower`` read the attributes as per-item lists. None for
        ``user_interests`` on a catalog of fewer than 3 items (its dim must stay below it)."""
        config = self.config
        if self.name == "user_interests":
            if train.n_items < 3:
                _log.warning("user_interests: skipped, the catalog has %d items", train.n_items)
                return None
            config = _interests_config(config, train.n_items)
        if self.name != "two_tower":
            codes = train.item_features.get("attributes")
            lists = {} if codes is None else {"attributes": attribute_lists(codes)}
            train = replace(train, item_features=lists)  # type: ignore[arg-type]
        return source_class(self.name)(config).fit(train)

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        split = feed_split(ctx)
        model = None if split is None else self.fit(split.train)
        if model is None or split is None:
            return {}
        model.save(out / self.folder)
        entry: dict[str, Any] = {"path": self.folder, **model.stats}
        if split.measured:
            top = _top(model, split.histories, split.held_users, self.per_source)
            table = FusionTable.build([top], [[t] for t in split.targets], split.data.n_items)
            nd = rank_metrics(table.ranks([1.0], 60.0, split.data.n_items), (10,))["ndcg@10"]
            split.lists[self.name] = top
            split.alone[self.name] = float(nd.mean())
            entry["valid_ndcg@10"] = round(split.alone[self.name], 4)
        entry["config"] = model.config.model_dump(mode="json")
        if self.name == "two_tower":
            entry["features"] = {k: list(np.shape(v)) for k, v in split.data.item_features.items()}
        return {self.name: entry}


class FusionStep(BuildStep):
    """``feed/fusion``: the feed's RRF weights and ``k``, tuned on the members' validation
    lists (nothing without held-out users: the feed keeps its configured fusion)."""

    name, label = "feed/fusion", "feed_fusion"  # type: ignore[assignment]

    def message(self, ctx: BuildContext) -> str:
        return "tuning the feed's fusion on held-out interactions"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        split = feed_split(ctx)
        if split is None or not split.measured or not split.lists:
            return {}
        n_items = split.data.n_items
        table = FusionTable.build(list(split.lists.values()), [[t] for t in split.targets], n_items)
        choice = tune_fusion(table, n_items, WEIGHTS, RRF_KS)
        weights = list(choice.weights)
        alone = list(split.alone.values())
        if max(alone) > choice.valid_ndcg:  # the ascent missed it: one member alone is better
            weights = [float(j == int(np.argmax(alone))) for j in range(len(alone))]
        fusion = {
            "method": "rrf",
            "k": choice.rrf_k,
            "weights": dict(zip(split.lists, weights, strict=True)),
            "valid_ndcg@10": round(max(choice.valid_ndcg, *alone), 4),
            "valid_users": len(split.targets),
        }
        path = out / self.folder
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fusion, indent=2))
        _log.info("feed fusion %s", fusion)
        return {self.name: {"path": self.folder, **fusion}}
