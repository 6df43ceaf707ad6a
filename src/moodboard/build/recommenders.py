"""The build's feed steps: one per personalized recommender, then the feed's fusion.

The feed is asked when a user comes back, so the held-out step is a next visit: the last visit
(the steps after the user's last gap of ``FeedConfig.visit_gap_minutes`` or more) of the
``FeedConfig.valid_users`` users whose last visits are the most recent, among those with two or
more items before it and an item in it they had not engaged with, the targets being those new
items (the feed leaves out what the user engaged with; the newest visits are the closest to
what the feed will be asked next, as in a time split; ``sequence`` stops early on the last).
Within one visit the next item is mostly the same session's or basket's, which rewards other
models than the ones that find what a user comes back for. ``two_tower``, ``sequence``,
``graph/walks``, ``user_interests`` and ``ease`` are trained on the rest. Each then ranks every
item for the held-out users (their own items excluded), and the weights of the feed's
reciprocal-rank fusion and its ``k`` are tuned on those lists (coordinate ascent on NDCG@10, as
``moodboard evaluate recs`` tunes ``fused``). The models are served as trained, except those
named in ``FeedConfig.refit`` (``ease``, a closed form), fitted again on every interaction once
measured; the others miss the held-out visits in training, though the histories the feed reads
hold them. When the feed's ``sources`` name ``popular/trending``, popularity joins the tuning
as a member, computed from the training interactions. The tuned fusion is written to the
``feed/fusion`` part with every member's validation NDCG@10.

The held-out split is made once per build (``feed_split``) and shared by the steps through the
build context, as are the members' validation lists the fusion step tunes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
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
from moodboard.retrieve import CandidateSource, PopularSource, SourceQuery, TrainingData
from moodboard.retrieve.item_features import attribute_codes
from moodboard.retrieve.registry import source_class
from moodboard.retrieve.sequence import attribute_lists

_log = logging.getLogger(__name__)

POPULAR = "popular/trending"
#: The candidate weights and RRF ``k`` values of the tuning.
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
RRF_KS = (60.0, 10.0)


def last_visits(times: Sequence[np.ndarray], gap_us: int) -> np.ndarray:
    """Where each user's last visit starts in their sequence: right after the last gap of
    ``gap_us`` or more between consecutive steps (0: one visit)."""
    starts = np.zeros(len(times), dtype=np.int64)
    for u, t in enumerate(times):
        gaps = np.flatnonzero(np.diff(np.asarray(t, dtype=np.int64)) >= gap_us)
        starts[u] = gaps[-1] + 1 if len(gaps) else 0
    return starts


def holdout(
    data: TrainingData,
    n_users: int,
    seed: int,
    visits: np.ndarray | None = None,
    times: Sequence[np.ndarray] | None = None,
) -> tuple[TrainingData, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Training data without the last visit of up to ``n_users`` users; those users, their
    histories (what came before the visit) and their held-out items.

    A user can be held out with 2+ items before their last visit and an item in it they had
    not engaged with before; the targets are those items, once each, in visit order (the feed
    shows new items).
    ``visits`` gives where each user's last visit starts (``last_visits``); None: a visit is
    one item. With ``times`` (each step's time), the users whose last visits are the most
    recent are held out, as a time split would (what sells now is what the feed serves
    next); without, a seeded random sample of them.
    """
    seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
    if visits is None:
        visits = np.array([len(s) - 1 for s in seqs], dtype=np.int64)
    new = {}
    for u, (s, v) in enumerate(zip(seqs, visits, strict=True)):
        later = s[v:][~np.isin(s[v:], s[:v])] if v >= 2 else s[:0]
        if len(later):
            new[u] = later[np.sort(np.unique(later, return_index=True)[1])]
    eligible = np.random.default_rng(seed).permutation(np.fromiter(new, np.int64, len(new)))
    if times is not None:  # newest last visits first; the permutation breaks ties
        start = np.array([times[u][visits[u]] for u in eligible], dtype=np.int64)
        eligible = eligible[np.argsort(-start, kind="stable")]
    held = np.sort(eligible[:n_users])
    weights = None if data.weights is None else [np.asarray(w) for w in data.weights]
    for u in held:
        seqs[u] = seqs[u][: visits[u]]
        if weights is not None:
            weights[u] = weights[u][: visits[u]]
    train = replace(data, sequences=seqs, weights=weights)
    return train, held, [seqs[u] for u in held], [new[u] for u in held]


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


def _popular_top(ctx: BuildContext, split: FeedSplit, k: int) -> np.ndarray:
    """``popular/trending``'s lists for the held-out users (their items excluded): the
    training interactions (the held-out visits left out) weighted by action and halved every
    ``half_life_days`` before the newest of them, as popularity stood before those visits."""
    half_life_us = ctx.settings.retrieve.popular.half_life_days * 86_400e6
    seqs, times = split.train.sequences, ctx.sequence_times
    weights = split.train.weights or [np.ones(len(q)) for q in seqs]
    newest = max(int(times[u][len(q) - 1]) for u, q in enumerate(seqs) if len(q))
    decayed = [
        np.asarray(w, np.float64) * 0.5 ** ((newest - times[u][: len(q)]) / half_life_us)
        for u, (q, w) in enumerate(zip(seqs, weights, strict=True))
    ]
    pop = PopularSource().fit(TrainingData(split.data.n_items, seqs, weights=decayed))
    empty = np.full(k, -1, dtype=np.int32)
    out = np.tile(empty, (len(split.histories), 1))
    for n, hist in enumerate(split.histories):
        items = pop(SourceQuery(exclude=hist), k).items
        out[n, : len(items)] = items
    return out


def _measure(split: FeedSplit, name: str, top: np.ndarray) -> float:
    """Keep a member's validation lists and return its NDCG@10 alone."""
    table = FusionTable.build([top], split.targets, split.data.n_items)
    nd = rank_metrics(table.ranks([1.0], 60.0, split.data.n_items), (10,))["ndcg@10"]
    split.lists[name] = top
    split.alone[name] = float(nd.mean())
    return split.alone[name]


@dataclass(frozen=True)
class FeedSplit:
    """The recommenders' training data and the held-out users they are measured on."""

    data: TrainingData
    train: TrainingData
    held_users: list[str]
    histories: list[np.ndarray]
    #: The new items of each held-out visit.
    targets: list[np.ndarray]
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
    split = None
    if ctx.has_sequences:
        users, seqs, weights = ctx.sequences
        catalog = ctx.catalog
        features: dict[str, Any] = {
            "text": ctx.text[0],
            "attributes": attribute_codes([catalog.category, *catalog.attributes.values()]),
        }
        if ctx.images is not None:
            features["image"] = ctx.images[0]
        data = TrainingData(len(catalog), seqs, features, weights, users, catalog)
        times = ctx.sequence_times
        visits = last_visits(times, round(cfg.visit_gap_minutes * 60e6))
        train, held, hist, targets = holdout(
            data, cfg.valid_users, cfg.sequence.seed, visits, times
        )
        # early stopping (``sequence``) reads one target per user: the visit's last new item
        last = np.array([t[-1] for t in targets], dtype=np.int64)
        valid = (hist, last) if len(held) else None
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
    per_source
        The length of its lists for the fusion's tuning.
    refit
        Fit it again on every interaction once measured (the held-out visits included), and
        serve that model (``FeedConfig.refit``).
    """

    name: str  # type: ignore[misc]

    def __init__(self, name: str, config: Any, per_source: int = 200, refit: bool = False) -> None:
        self.name = name
        self.config = config
        self.per_source = per_source
        self.refit = refit

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
        measured: dict[str, Any] = {}
        if split.measured:
            top = _top(model, split.histories, split.held_users, self.per_source)
            measured["valid_ndcg@10"] = round(_measure(split, self.name, top), 4)
            if self.refit:  # measured on the split, served fitted on every interaction
                model = self.fit(split.data)
                measured["refit"] = True
        model.save(out / self.folder)  # type: ignore[union-attr]
        entry: dict[str, Any] = {"path": self.folder, **model.stats, **measured}  # type: ignore[union-attr]
        entry["config"] = model.config.model_dump(mode="json")  # type: ignore[union-attr]
        if self.name == "two_tower":
            entry["features"] = {k: list(np.shape(v)) for k, v in split.data.item_features.items()}
        return {self.name: entry}


class FusionStep(BuildStep):
    """``feed/fusion``: the feed's RRF weights and ``k``, tuned on the members' validation
    lists (nothing without held-out users: the feed keeps its configured fusion).

    When the feed's ``sources`` name ``popular/trending``, popularity is a member too (what is
    bought now: new collections, the season), measured on the other users' events."""

    name, label = "feed/fusion", "feed_fusion"  # type: ignore[assignment]

    def message(self, ctx: BuildContext) -> str:
        return "tuning the feed's fusion on held-out interactions"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        split = feed_split(ctx)
        if split is None or not split.measured or not split.lists:
            return {}
        feed = ctx.settings.surfaces.feed
        if POPULAR in feed.sources and POPULAR not in split.lists:
            _measure(split, POPULAR, _popular_top(ctx, split, feed.per_source))
        n_items = split.data.n_items
        table = FusionTable.build(list(split.lists.values()), split.targets, n_items)
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
