"""Autocomplete: completions of a typed prefix, ranked by a small learned model.

``Autocomplete(config).fit(log, catalog, interests)`` gathers the candidates
(``autocomplete_candidates``), indexes them by prefix (``autocomplete_index``) and trains a
LightGBM lambdarank model on the log itself: half of the queries make the candidates and their
statistics, the prefixes (1..``model.max_prefix_chars`` characters) of the other half's queries
are the training groups, and a candidate is right when its first words are the query's first
two words. ``complete(prefix, k, interests)`` is what ``GET /autocomplete`` and
``moodboard evaluate autocomplete`` both call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import lightgbm
import numpy as np

from moodboard.config.autocomplete import AutocompleteConfig
from moodboard.errors import InputError, NotFittedError
from moodboard.surfaces.autocomplete_candidates import (
    CandidateTable,
    CatalogText,
    QueryLog,
    candidate_table,
    is_blocked,
    prior_score,
    words_of,
)
from moodboard.surfaces.autocomplete_index import PrefixIndex
from moodboard.understand.normalize import normalize_text

_log = logging.getLogger(__name__)

#: The ranker's features, in order.
FEATURES = (
    "pop_full",
    "pop_starts",
    "share_starts",
    "cat_any",
    "cat_lead",
    "share_cat",
    "combo",
    "engagement",
    "words",
    "extra_chars",
    "prefix_chars",
    "word_complete",
    "edit",
    "interest",
)
CONFIG_FILE, MODEL_FILE = "autocomplete.json", "model.txt"


@dataclass(frozen=True)
class Completion:
    """One completion: its text and the ranker's score."""

    text: str
    score: float


def normalize_prefix(prefix: str) -> str:
    """The normalized prefix; a trailing space is kept (the last word is complete)."""
    norm = normalize_text(prefix)
    return norm + " " if norm and prefix[-1:].isspace() else norm


def is_hit(completion: str, query: str) -> bool:
    """Whether the first words of ``completion`` are the first two words of ``query`` (all of
    them if it has fewer), compared as whole normalized words."""
    target = words_of(query)[:2]
    return bool(target) and words_of(completion)[: len(target)] == target


def _hits(text: str, target: list[str]) -> bool:
    """``is_hit`` of a normalized text and the first words of a normalized query."""
    return text.split(" ")[: len(target)] == target


class _Scorer:
    """The state ``complete`` reads: candidates, index, running sums, model."""

    def __init__(self, table: CandidateTable, index: PrefixIndex, model: Any) -> None:
        self.table, self.index, self.model = table, index, model
        cols = {name: table.column(name).astype(np.float64) for name in ("pop_full", "cat_any")}
        self.cum = {name: index.sorted_cumsum(c) for name, c in cols.items()}
        self.log_cols = np.log1p(table.columns.astype(np.float64))
        self.lengths = np.array([len(t) for t in table.texts], dtype=np.float64)
        self.n_words = np.array([t.count(" ") + 1 for t in table.texts], dtype=np.float64)
        self.prior = prior_score(table)

    def candidates(
        self, p: str, cfg: AutocompleteConfig, typos: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate indices for prefix ``p`` and whether each came from a one-edit variant
        (asked when ``typos`` and no text starts with ``p``)."""
        idx = self.index.top(p, cfg.candidates)
        edit = np.zeros(len(idx), dtype=bool)
        if typos and cfg.typo_min_chars and len(p.strip()) >= cfg.typo_min_chars and not len(idx):
            more = self.index.top_of_variants(self.index.variants(p), cfg.candidates)
            more = more[~np.isin(more, idx)]
            idx = np.concatenate([idx, more]).astype(np.int32)
            edit = np.concatenate([edit, np.ones(len(more), dtype=bool)])
        return idx, edit

    def features(
        self, p: str, idx: np.ndarray, edit: np.ndarray, interests: Mapping[str, float] | None
    ) -> np.ndarray:
        """The ``FEATURES`` matrix of candidates ``idx`` for prefix ``p``."""
        t = self.table
        logs = self.log_cols[idx]
        col = {
            name: logs[:, i]
            for i, name in enumerate(
                ("pop_full", "pop_starts", "engagement", "cat_any", "cat_lead", "combo")
            )
        }
        raw = t.columns[idx].astype(np.float64)
        total = self.index.range_sum(p, self.cum["pop_full"])
        total_cat = self.index.range_sum(p, self.cum["cat_any"])
        n = len(p)
        following = np.array([t.texts[i][n : n + 1] in ("", " ") for i in idx], dtype=np.float64)
        interest = np.zeros(len(idx))
        if interests:
            shares = np.array([interests.get(c, 0.0) for c in t.categories] + [0.0])
            interest = shares[t.category[idx]]
        return np.column_stack(
            [
                col["pop_full"],
                col["pop_starts"],
                raw[:, 1] / (total + 1.0),
                col["cat_any"],
                col["cat_lead"],
                raw[:, 3] / (total_cat + 1.0),
                col["combo"],
                raw[:, 2],
                self.n_words[idx],
                self.lengths[idx] - n,
                np.full(len(idx), float(n)),
                following,
                edit.astype(np.float64),
                interest,
            ]
        )

    def scores(self, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The model's scores of the rows of ``X`` (the prior score without a model)."""
        if self.model is None:
            return self.prior[idx] - X[:, FEATURES.index("edit")]
        return np.asarray(self.model.predict(X, num_threads=1), dtype=np.float64)


class Autocomplete:
    """Completions of a prefix from the search log and the catalog.

    Parameters
    ----------
    config
        Its config; default ``AutocompleteConfig()``.
    """

    def __init__(self, config: AutocompleteConfig | None = None) -> None:
        self.config = config or AutocompleteConfig()
        self._scorer: _Scorer | None = None
        self.info: dict[str, Any] = {}

    @property
    def fitted(self) -> bool:
        """Whether it was fitted (or loaded)."""
        return self._scorer is not None

    def _state(self) -> _Scorer:
        if self._scorer is None:
            raise NotFittedError("Autocomplete isn't fitted, call fit first")
        return self._scorer

    def _index(self, table: CandidateTable) -> PrefixIndex:
        cfg = self.config
        return PrefixIndex(table.texts, prior_score(table), cfg.precompute_chars, cfg.candidates)

    def fit(
        self,
        log: QueryLog,
        catalog: CatalogText,
        interests: Mapping[str, Mapping[str, float]] | None = None,
    ) -> Self:
        """Learn candidates, their index and the ranker from ``log`` and ``catalog``.

        Parameters
        ----------
        log
            The logged searches (only those with engagement make candidates).
        catalog
            The catalog's titles, categories and attribute phrases.
        interests
            Each user's interests (category -> share, ``interests_of``), for the training rows
            of users the log names.
        """
        table = candidate_table(log, catalog, self.config)
        model, self.info = self._train(log, catalog, interests or {})
        self._scorer = _Scorer(table, self._index(table), model)
        self.info |= {"candidates": len(table.texts), "searches": len(log)}
        _log.info("autocomplete: %d candidates, %s", len(table.texts), self.info)
        return self

    def _train(
        self, log: QueryLog, catalog: CatalogText, interests: Mapping[str, Mapping[str, float]]
    ) -> tuple[Any, dict[str, Any]]:
        """The ranker learned on one half of the log's queries with the other half's
        statistics (None, and why, when there is too little to learn from)."""
        cfg, mcfg = self.config, self.config.model
        keys = [" ".join(words_of(q)) for q in log.queries]
        distinct = sorted(set(keys))
        rng = np.random.default_rng(cfg.seed)
        half = set(rng.permutation(distinct)[: len(distinct) // 2].tolist())
        in_half = np.array([k in half for k in keys], dtype=bool)
        rows_a = np.flatnonzero(~in_half)
        w = np.asarray(log.weight, dtype=np.float64)
        scale = w.sum() / max(w[rows_a].sum(), 1e-12)
        table = candidate_table(log.take(rows_a, scale), catalog, cfg)
        state = _Scorer(table, self._index(table), None)
        engaged = np.asarray(log.strength) > 0
        users = log.users or [None] * len(log)
        pairs = sorted({(keys[i], users[i] or "") for i in np.flatnonzero(in_half & engaged)})
        if len(pairs) > mcfg.max_queries:
            pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), mcfg.max_queries, False))]
        X, y, groups = [], [], []
        for query, user in pairs:
            target = query.split(" ")[:2]
            for n in range(1, min(mcfg.max_prefix_chars, len(query)) + 1):
                p = query[:n]
                idx, edit = state.candidates(p, cfg, typos=False)
                labels = np.array([_hits(table.texts[i], target) for i in idx], dtype=np.int32)
                if len(idx) < 2 or not labels.any():
                    continue
                X.append(state.features(p, idx, edit, interests.get(user)))
                y.append(labels)
                groups.append(len(idx))
        info: dict[str, Any] = {"train_queries": len(pairs), "train_groups": len(groups)}
        if len(groups) < mcfg.min_groups:
            reason = f"{len(groups)} training groups with a hit, fewer than {mcfg.min_groups}"
            _log.info("autocomplete ranks by its prior: %s", reason)
            return None, info | {"trained": False, "reason": reason}
        ranker = lightgbm.LGBMRanker(
            n_estimators=mcfg.trees,
            num_leaves=mcfg.leaves,
            learning_rate=mcfg.learning_rate,
            min_child_samples=20,
            random_state=cfg.seed,
            n_jobs=1,
            verbose=-1,
        )
        ranker.fit(np.vstack(X), np.concatenate(y), group=groups, feature_name=list(FEATURES))
        return ranker.booster_, info | {"trained": True, "train_rows": int(sum(groups))}

    def complete(
        self, prefix: str, k: int | None = None, interests: Mapping[str, float] | None = None
    ) -> list[Completion]:
        """The best completions of ``prefix``, best first (none for a blank prefix).

        Parameters
        ----------
        prefix
            What the shopper typed (normalized here; a trailing space ends a word).
        k
            How many; default ``config.k``.
        interests
            The shopper's interests (category -> share), None for an anonymous shopper.

        Raises
        ------
        InputError
            If ``k`` is not in 1..``config.max_k`` or the prefix is longer than
            ``config.max_prefix_chars``.
        NotFittedError
            If it was neither fitted nor loaded.
        """
        cfg = self.config
        k = cfg.k if k is None else k
        if not 1 <= k <= cfg.max_k:
            raise InputError(
                f"The 'k' parameter must be an int in 1..{cfg.max_k}. Got {k} instead."
            )
        if len(prefix) > cfg.max_prefix_chars:
            raise InputError(
                f"The 'q' parameter must be at most {cfg.max_prefix_chars} characters "
                f"(autocomplete.max_prefix_chars). Got {len(prefix)} instead."
            )
        state = self._state()
        p = normalize_prefix(prefix)
        if not p:
            return []
        idx, edit = state.candidates(p, cfg)
        if not len(idx):
            return []
        scores = state.scores(state.features(p, idx, edit, interests), idx)
        blocked = [normalize_text(b) for b in cfg.blocked_terms]
        out: list[Completion] = []
        heads: dict[str, int] = {}
        for j in np.lexsort((-scores, edit)):  # exact-prefix candidates before typo ones
            text = state.table.texts[idx[j]]
            head = " ".join(text.split(" ")[:2])
            if heads.get(head, 0) >= cfg.per_head or (blocked and is_blocked(text, blocked)):
                continue
            heads[head] = heads.get(head, 0) + 1
            out.append(Completion(text, round(float(scores[j]), 4)))
            if len(out) == k:
                break
        return out

    def save(self, folder: Path) -> None:
        """Save as ``.npy`` arrays, JSON and LightGBM's text model (no pickles)."""
        state = self._state()
        folder.mkdir(parents=True, exist_ok=True)
        t = state.table
        np.save(folder / "texts.npy", np.array([s.encode() for s in t.texts], dtype=bytes))
        np.save(folder / "columns.npy", t.columns)
        np.save(folder / "category.npy", t.category)
        state.index.save(folder)
        if state.model is not None:
            state.model.save_model(str(folder / MODEL_FILE))
        meta = {
            "config": self.config.model_dump(mode="json"),
            "features": list(FEATURES),
            "categories": t.categories,
            "model": MODEL_FILE if state.model is not None else None,
            "info": self.info,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path, config: AutocompleteConfig | None = None) -> Autocomplete:
        """The autocomplete saved in ``folder``; ``config`` (the server's) replaces the
        request-time settings (``k``, blocked terms, typo tolerance) of the saved one.

        Raises
        ------
        InputError
            If its files are unreadable or its model was trained on other features.
        """
        try:
            meta = json.loads((folder / CONFIG_FILE).read_text())
            if meta["features"] != list(FEATURES):
                raise ValueError("trained on other features")
            texts = [b.decode() for b in np.load(folder / "texts.npy", allow_pickle=False)]
            table = CandidateTable(
                texts,
                np.load(folder / "columns.npy", allow_pickle=False),
                np.load(folder / "category.npy", allow_pickle=False),
                list(meta["categories"]),
            )
            index = PrefixIndex.load(folder)
            model = None
            if meta.get("model"):
                model = lightgbm.Booster(model_file=str(folder / meta["model"]))
            saved = AutocompleteConfig.model_validate(meta["config"])
        except (OSError, ValueError, KeyError, lightgbm.basic.LightGBMError) as exc:
            raise InputError(f"{folder} is not a readable autocomplete ({exc}): rebuild.") from exc
        self = cls(config or saved)
        self._scorer = _Scorer(table, index, model)
        self.info = dict(meta.get("info", {}))
        return self
