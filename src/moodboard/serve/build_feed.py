"""The build's feed step: train the personalized recommenders and tune how the feed fuses them.

The last item of up to ``FeedConfig.valid_users`` users with three or more interactions is
held out; ``two_tower``, ``sequence``, ``graph/walks`` and ``user_interests`` are trained on the
rest (``sequence`` also stops early on those held-out items). Each then ranks every item for
the held-out users (their own items excluded), and the weights of the feed's reciprocal-rank
fusion and its ``k`` are tuned on those lists (coordinate ascent on NDCG@10, as ``moodboard
evaluate recs`` tunes ``fused``). The models are served as trained: there is no refit, so the
held-out interactions are missing from training but present in the histories the feed reads.
The tuned fusion is written to ``feed/fusion.json`` with every member's validation NDCG@10.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from moodboard.config import FeedConfig, InterestsConfig
from moodboard.evaluate.rec_fusion import FusionTable, top_lists, tune_fusion
from moodboard.evaluate.rec_protocol import exclude_histories, rank_metrics
from moodboard.retrieve import CandidateSource, TrainingData
from moodboard.retrieve.registry import folder_name, source_class
from moodboard.retrieve.sequence import attribute_lists

_log = logging.getLogger(__name__)

#: Where the build writes the tuned fusion, relative to an artifact version's folder.
FUSION_FILE = "feed/fusion.json"
#: The candidate weights and RRF ``k`` values of the tuning.
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
RRF_KS = (60.0, 10.0)
#: The recommenders the build trains.
MODELS = ("two_tower", "sequence", "graph/walks", "user_interests")


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


def _fit_all(train: TrainingData, cfg: FeedConfig) -> dict[str, CandidateSource]:
    """The recommenders fitted on ``train`` (``sequence`` with early stopping on its
    validation); all but ``two_tower`` read the attributes as per-item lists."""
    codes = train.item_features.get("attributes")
    plain = replace(
        train,
        item_features={} if codes is None else {"attributes": attribute_lists(codes)},  # type: ignore[arg-type]
    )
    configs: dict[str, Any] = {
        "two_tower": cfg.two_tower,
        "sequence": cfg.sequence,
        "graph/walks": cfg.walks,
        "user_interests": _interests_config(cfg, train.n_items),
    }
    models: dict[str, CandidateSource] = {}
    for name in MODELS:
        if name == "user_interests" and train.n_items < 3:  # its dim must be >= 2 below it
            _log.warning("user_interests: skipped, the catalog has %d items", train.n_items)
            continue
        data = train if name == "two_tower" else plain
        models[name] = source_class(name)(configs[name]).fit(data)
    return models


def _interests_config(cfg: FeedConfig, n_items: int) -> InterestsConfig:
    """``cfg.interests`` with its embedding ``dim`` below the item count (a tiny catalog)."""
    top = max(2, n_items - 1)
    if cfg.interests.dim <= top:
        return cfg.interests
    _log.warning(
        "user_interests: dim %d is not below the %d items of this catalog; using %d",
        cfg.interests.dim,
        n_items,
        top,
    )
    return cfg.interests.model_copy(update={"dim": top})


def _top(model: CandidateSource, hist: list[np.ndarray], users: list[str], k: int) -> np.ndarray:
    out = []
    for lo in range(0, len(hist), 512):
        part = hist[lo : lo + 512]
        s = model.score(part, users=users[lo : lo + 512])
        out.append(top_lists(exclude_histories(np.array(s, dtype=np.float32), part), k))
    return np.concatenate(out) if out else np.empty((0, k), dtype=np.int32)


def train_feed(data: TrainingData, cfg: FeedConfig, folder: Path) -> dict[str, Any]:
    """Fit, save and measure the recommenders, tune and save the fusion; manifest entries.

    ``data.users`` names the user of each sequence.

    Nothing is trained (``{}``) when no user has two interactions; without held-out users
    the fusion keeps ``cfg.fuse``.
    """
    if not any(len(s) >= 2 for s in data.sequences):
        return {}
    train, held, hist, targets = holdout(data, cfg.valid_users, cfg.sequence.seed)
    valid = (hist, targets) if len(held) else None
    users = [str(u) for u in data.users] if data.users is not None else [""] * len(held)
    models = _fit_all(replace(train, validation=valid), cfg)
    out: dict[str, Any] = {}
    lists: dict[str, np.ndarray] = {}
    alone: list[float] = []  # each member's validation NDCG@10
    held_users = [users[u] for u in held] if data.users is not None else users
    for name, model in models.items():
        model.save(folder / folder_name(name))
        entry: dict[str, Any] = {"path": folder_name(name), **model.stats}
        if valid is not None:
            lists[name] = _top(model, hist, held_users, cfg.per_source)
            ranks = FusionTable.build([lists[name]], [[t] for t in targets], data.n_items)
            nd = rank_metrics(ranks.ranks([1.0], 60.0, data.n_items), (10,))["ndcg@10"]
            alone.append(float(nd.mean()))
            entry["valid_ndcg@10"] = round(alone[-1], 4)
        entry["config"] = model.config.model_dump(mode="json")
        out[name] = entry
    if valid is not None:
        table = FusionTable.build(list(lists.values()), [[t] for t in targets], data.n_items)
        choice = tune_fusion(table, data.n_items, WEIGHTS, RRF_KS)
        weights = list(choice.weights)
        if max(alone) > choice.valid_ndcg:  # the ascent missed it: one member alone is better
            weights = [float(j == int(np.argmax(alone))) for j in range(len(alone))]
        fusion = {
            "method": "rrf",
            "k": choice.rrf_k,
            "weights": dict(zip(lists, weights, strict=True)),
            "valid_ndcg@10": round(max(choice.valid_ndcg, *alone), 4),
            "valid_users": len(held),
        }
        (folder / FUSION_FILE).parent.mkdir(parents=True, exist_ok=True)
        (folder / FUSION_FILE).write_text(json.dumps(fusion, indent=2))
        out["feed/fusion"] = {"path": FUSION_FILE, **fusion}
        _log.info("feed fusion %s", fusion)
    return out
