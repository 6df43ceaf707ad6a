"""Offline evaluation of recommenders: every full-ranking candidate source under one protocol.

``RecEvaluation`` takes ``name -> factory``; a factory returns the candidate configurations of
a method (unfitted recommenders, the tuning grid). Each candidate is fitted on the split's
training data and, when there is more than one, scored on the validation step; the best by
validation NDCG@10 is measured once on the test step. On the leave-one-out split the test step
reuses the model fitted for validation (no retraining, as in S3-Rec); on the time split the
chosen configuration is fitted again on all data before the cutoff. The training data carries
the validation histories and targets (``TrainingData.validation``, for the sources that stop
early on them) when each validation user has one target.

``train_s`` is the wall time of fitting every candidate plus the validation scoring used to
choose among them (plus the refit on the time split); ``eval_s`` the test scoring.

``fused`` is weighted reciprocal-rank fusion of the top-200 lists of the members given in
``fuse``; its weights are tuned on the validation step and its ``train_s`` is the members'
``train_s`` plus that tuning. ``ranked`` re-ranks the fused top 200 with LambdaMART learned on
the validation step (``moodboard.evaluate.reranked``); its ``train_s`` is ``fused``'s plus the
re-ranker's own (``rerank_s``).

The methods themselves (baselines with their grids, learned sources) are in
``moodboard.evaluate.rec_methods``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.build.fusion import (
    FusionTable,
    exclude_histories,
    rank_metrics,
    top_lists,
    tune_fusion,
)
from moodboard.errors import ConfigError, InputError
from moodboard.evaluate.rec_methods import (
    BASELINE_GRIDS,
    Factory,
    baseline_factories,
    learned_factories,
)
from moodboard.evaluate.rec_protocol import (
    RecSplit,
    Step,
    target_ranks,
)
from moodboard.evaluate.reranked import Member, RerankConfig, rerank
from moodboard.retrieve import CandidateSource, TrainingData

__all__ = [
    "BASELINE_GRIDS",
    "FUSED",
    "RANKED",
    "Factory",
    "MethodResult",
    "RecEvalConfig",
    "RecEvaluation",
    "RecReport",
    "baseline_factories",
    "learned_factories",
]

_log = logging.getLogger(__name__)

Progress = Callable[[str], None]
FUSED, RANKED = "fused", "ranked"
#: A member's top lists and fitted models, (validation, test) each.
_Kept = tuple[tuple[np.ndarray, np.ndarray], tuple[CandidateSource, CandidateSource]]


class RecEvalConfig(BaseModel):
    """Parameters of the recommendation evaluation.

    Attributes
    ----------
    batch_users
        Users scored at once (memory: ``batch_users x n_items`` float32).
    select_by
        The validation metric that picks a method's configuration.
    fuse_top, fuse_weights, rrf_k, fuse_rounds
        Fusion: list length per member, the weight grid, the RRF constants, the coordinate
        ascent rounds.
    rerank
        The ``ranked`` method's re-ranker.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_users: int = Field(default=1024, ge=1)
    select_by: str = Field(default="ndcg@10", pattern=r"^(hr|ndcg|recall)@\d+$")
    fuse_top: int = Field(default=200, ge=10)
    fuse_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    rrf_k: tuple[float, ...] = (60.0, 10.0)
    fuse_rounds: int = Field(default=2, ge=1)
    rerank: RerankConfig = RerankConfig()


@dataclass
class MethodResult:
    """One method's test metrics, validation metrics, timings and chosen parameters."""

    test: dict[str, float]
    valid: dict[str, float] = field(default_factory=dict)
    train_s: float = 0.0
    eval_s: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecReport:
    """The evaluation of several methods on one split."""

    dataset: str
    ks: tuple[int, ...]
    notes: dict[str, int]
    methods: dict[str, MethodResult]

    def metric_names(self) -> list[str]:
        """``hr@10``, ``ndcg@10``, and ``recall@20``, ``ndcg@20`` on the time split."""
        names = ["hr@10", "ndcg@10"]
        for k in self.ks:
            if k != 10:
                names += [f"recall@{k}", f"ndcg@{k}"]
        return names

    def as_dict(self) -> dict[str, Any]:
        """``{"dataset": ..., "methods": {name: {"hr@10", "ndcg@10", [...], "train_s"}}}``;
        ``ranked`` adds ``rerank_s``, its re-ranker's own part of ``train_s``."""
        names = self.metric_names()
        return {
            "dataset": self.dataset,
            "methods": {
                m: {
                    **{n: r.test[n] for n in names},
                    "train_s": round(r.train_s, 3),
                    **({"rerank_s": r.params["rerank_s"]} if "rerank_s" in r.params else {}),
                }
                for m, r in self.methods.items()
            },
        }


@dataclass
class _Scored:
    metrics: dict[str, float]
    lists: np.ndarray | None


def _params(model: CandidateSource) -> dict[str, Any]:
    return model.config.model_dump(mode="json")


class RecEvaluation:
    """Measure recommenders on a ``RecSplit``: tune on validation, report test once.

    Parameters
    ----------
    factories
        Method name -> factory of its candidate configurations.
    config
        Evaluation parameters; defaults to ``RecEvalConfig()``.
    fuse
        The methods whose top lists ``fused`` combines and ``ranked`` re-ranks (at least 2
        when either is run).
    """

    def __init__(
        self,
        factories: Mapping[str, Factory],
        config: RecEvalConfig | None = None,
        fuse: Sequence[str] = (),
    ) -> None:
        self.factories = dict(factories)
        self.config = config if config is not None else RecEvalConfig()
        self.fuse = tuple(fuse)

    def _check(self, methods: Sequence[str]) -> list[str]:
        known = [*self.factories, FUSED, RANKED]
        bad = [m for m in methods if m not in known]
        if bad:
            raise ConfigError(
                f"Unknown method(s) {', '.join(bad)}: choose among {', '.join(known)}."
            )
        fusing = FUSED in methods or RANKED in methods
        if fusing:
            if len(self.fuse) < 2:
                raise ConfigError(
                    f"'fused' and 'ranked' need at least 2 member methods in fuse. "
                    f"Got {list(self.fuse)}."
                )
            missing = [m for m in self.fuse if m not in self.factories]
            if missing:
                raise ConfigError(
                    f"fuse names {', '.join(missing)}, which are not registered methods; "
                    f"choose among {', '.join(self.factories)}."
                )
        order = [m for m in methods if m not in (FUSED, RANKED)]
        if fusing:
            order += [m for m in self.fuse if m not in order] + [FUSED]
        return order + ([RANKED] if RANKED in methods else [])

    def run(
        self,
        split: RecSplit,
        methods: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> RecReport:
        """Fit, tune and measure each method (default: all registered, then ``fused``).

        Raises
        ------
        ConfigError
            If a method is unknown, a factory returns no candidate, or ``fused`` lacks
            members.
        InputError
            If a recommender's ``score`` returns the wrong shape or NaN.
        """
        say = progress or (lambda m: None)
        wanted = list(methods) if methods is not None else [*self.factories]
        if methods is None and len(self.fuse) >= 2:
            wanted.append(FUSED)
        order = self._check(wanted)
        if int(self.config.select_by.split("@")[1]) not in split.ks:
            raise ConfigError(
                f"select_by={self.config.select_by!r} needs a cutoff in {split.ks} "
                f"for {split.dataset}; use e.g. 'ndcg@{split.ks[0]}'."
            )
        results: dict[str, MethodResult] = {}
        kept: dict[str, _Kept] = {}
        for name in order:
            if name == FUSED:
                lists = {m: kept[m][0] for m in self.fuse}
                results[name] = self._fused(split, results, lists, say)
            elif name == RANKED:
                results[name] = self._ranked(split, results, kept, say)
                kept.clear()
            else:
                keep = name in self.fuse and FUSED in order
                results[name], member = self._method(name, split, keep, say)
                if member is not None:
                    kept[name] = member
            if name == FUSED and RANKED not in order:
                kept.clear()
            _log.info("%s on %s: %s", name, split.dataset, results[name])
        return RecReport(split.dataset, split.ks, dict(split.notes), results)

    # ------------------------------------------------------------------ one method
    def _candidates(self, name: str) -> list[CandidateSource]:
        cands = list(self.factories[name]())
        if not cands:
            raise ConfigError(f"The factory of {name!r} must return at least one recommender.")
        return cands

    def _fit(
        self, model: CandidateSource, data: TrainingData, valid: Step | None
    ) -> CandidateSource:
        single = None if valid is None else valid.single_targets()
        if single is not None:
            data = replace(data, validation=(valid.histories, single))  # type: ignore[union-attr]
        return model.fit(data)

    def _method(
        self, name: str, split: RecSplit, keep_lists: bool, say: Progress
    ) -> tuple[MethodResult, _Kept | None]:
        cands: list[CandidateSource | None] = list(self._candidates(name))
        tune = len(cands) > 1 or keep_lists
        refit = split.test_train is not None
        t0 = time.perf_counter()
        model: CandidateSource | None = None
        best_value, n_best, valid = -np.inf, 0, _Scored({}, None)
        if tune or not refit:
            for n in range(len(cands)):
                say(f"{name}: fitting {n + 1}/{len(cands)}")
                cand, cands[n] = cands[n], None  # the list must not keep beaten models alive
                fitted = self._fit(cand, split.train, split.valid)  # type: ignore[arg-type]
                if not tune:
                    model = fitted
                    break
                say(f"{name}: validating {n + 1}/{len(cands)}")
                scored = self._score(name, fitted, split.valid, split, keep_lists)
                value = scored.metrics[self.config.select_by]
                _log.info("%s %s: valid %s", name, _params(fitted), scored.metrics)
                if model is None or value > best_value:
                    model, best_value, n_best, valid = fitted, value, n, scored
                del fitted, cand
        tuned = model if keep_lists else None  # the fusion members' feed ``ranked``
        if refit:
            say(f"{name}: fitting the chosen configuration on all training data")
            model = None  # free the tuning model first
            model = self._fit(self._candidates(name)[n_best], split.test_train, None)
        train_s = time.perf_counter() - t0
        assert model is not None
        t1 = time.perf_counter()
        say(f"{name}: testing")
        test = self._score(name, model, split.test, split, keep_lists)
        result = MethodResult(
            test=test.metrics,
            valid=valid.metrics,
            train_s=train_s,
            eval_s=time.perf_counter() - t1,
            params=_params(model),
        )
        kept = None
        if tuned is not None and valid.lists is not None and test.lists is not None:
            kept = ((valid.lists, test.lists), (tuned, model))
        return result, kept

    def _score(
        self, name: str, model: CandidateSource, step: Step, split: RecSplit, keep_lists: bool
    ) -> _Scored:
        """Score a step in batches: mean metrics, and the top lists when ``keep_lists``."""
        n_items, ks = split.train.n_items, split.ks
        per_user: dict[str, list[np.ndarray]] = {}
        lists = []
        b = self.config.batch_users
        for lo in range(0, len(step), b):
            hist = step.histories[lo : lo + b]
            s = np.asarray(model.score(hist), dtype=np.float32)
            if s.shape != (len(hist), n_items):
                raise InputError(
                    f"{name}.score must return ({len(hist)}, {n_items}) scores, one row per "
                    f"history. Got {s.shape} instead."
                )
            if np.isnan(s).any():
                raise InputError(f"{name}.score returned NaN; fix the model's numerics.")
            exclude_histories(s, hist)
            for k, v in rank_metrics(target_ranks(s, step.targets[lo : lo + b]), ks).items():
                per_user.setdefault(k, []).append(v)
            if keep_lists:
                lists.append(top_lists(s, self.config.fuse_top))
        metrics = {k: float(np.concatenate(v).mean()) for k, v in per_user.items()}
        return _Scored(metrics, np.concatenate(lists) if keep_lists else None)

    # ------------------------------------------------------------------ fusion
    def _fused(
        self,
        split: RecSplit,
        results: Mapping[str, MethodResult],
        lists: Mapping[str, tuple[np.ndarray, np.ndarray]],
        say: Progress,
    ) -> MethodResult:
        say("fused: tuning the weights")
        n_items = split.train.n_items
        cfg = self.config
        t0 = time.perf_counter()
        valid = FusionTable.build([lists[m][0] for m in self.fuse], split.valid.targets, n_items)
        choice = tune_fusion(valid, n_items, cfg.fuse_weights, cfg.rrf_k, cfg.fuse_rounds)
        tune_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        test = FusionTable.build([lists[m][1] for m in self.fuse], split.test.targets, n_items)
        ranks = test.ranks(choice.weights, choice.rrf_k, n_items)
        metrics = {k: float(v.mean()) for k, v in rank_metrics(ranks, split.ks).items()}
        return MethodResult(
            test=metrics,
            valid={"ndcg@10": choice.valid_ndcg},
            train_s=tune_s + sum(results[m].train_s for m in self.fuse),
            eval_s=time.perf_counter() - t1,
            params={
                "members": list(self.fuse),
                "weights": list(choice.weights),
                "rrf_k": choice.rrf_k,
            },
        )

    def _ranked(
        self,
        split: RecSplit,
        results: Mapping[str, MethodResult],
        kept: Mapping[str, _Kept],
        say: Progress,
    ) -> MethodResult:
        say("ranked: learning the re-ranker on the validation step")
        fused = results[FUSED].params
        members = [Member(m, *kept[m]) for m in self.fuse]
        r = rerank(split, members, (fused["weights"], fused["rrf_k"]), self.config.rerank)
        return MethodResult(
            test=r.test,
            valid=r.valid,
            train_s=results[FUSED].train_s + r.train_s,
            eval_s=r.eval_s,
            params={**r.params, "rerank_s": round(r.train_s, 3)},
        )
