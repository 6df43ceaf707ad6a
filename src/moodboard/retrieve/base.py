"""The one contract of every candidate source: ``CandidateSource``.

A source has a pydantic config next to its class (``Config``, ``extra="forbid"``), a
constructor that only stores it, ``fit(TrainingData) -> Self`` where it learns or indexes, and
``__call__(SourceQuery, k) -> Candidates``. The base class owns the bookkeeping every source
shares: the fitted state and ``NotFittedError``, the ``k`` check (and its clamp to the
catalog), the unknown-item policy, filters and exclusions, and save/load in one open format: a
folder with ``source.json`` (``{"kind", "name", "n_items", "config", "state"}``) beside the
source's own ``.npy``/``.parquet``/state-dict files (no pickles).

Sources that score every item for a batch of histories (the recommenders and baselines) set
``full_ranking = True`` and implement ``_score``: ``score(histories, weights, users)`` is the
offline full-ranking protocol of ``moodboard evaluate recs``; on other sources it raises a
``ConfigError`` that says so.

Unknown-item policy: history and seed items outside ``0 .. n_items - 1`` are dropped before
retrieval (with their weights), exclusions outside it are ignored; a query left with nothing
to go on gets what the source gives an empty query (often nothing, popularity for the
full-ranking sources). Unknown users are the source's business (``two_tower`` hashes them).
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from moodboard.data import Candidates, Catalog
from moodboard.errors import ConfigError, InputError, NotFittedError
from moodboard.retrieve.inputs import SourceQuery, TrainingData, known_items

__all__ = [
    "SOURCE_FILE",
    "CandidateSource",
    "SourceConfig",
    "SourceQuery",
    "TrainingData",
    "allowed_except",
    "check_k",
    "read_meta",
    "top_k",
]

_log = logging.getLogger(__name__)

#: The file describing a saved source inside its folder.
SOURCE_FILE = "source.json"


class SourceConfig(BaseModel):
    """Base of every component's config: JSON round-trip, unknown keys rejected, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CandidateSource(ABC):
    """A named candidate source (see the module docstring for the contract).

    Subclasses set ``kind`` and ``Config`` and implement ``_fit``, ``_retrieve`` (or, when
    ``full_ranking``, ``_score``), ``_save`` and ``_load`` for their state.

    Parameters
    ----------
    config
        The source's config; ``Config()`` when None.
    name
        The name its candidates carry; ``kind`` when None.

    Raises
    ------
    ConfigError
        If ``config`` is not a ``Config``.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]
    #: Whether ``score`` ranks the whole catalog for histories (the offline protocol).
    full_ranking: ClassVar[bool] = False

    def __init__(self, config: SourceConfig | None = None, name: str | None = None) -> None:
        if config is None:
            config = self.Config()
        if not isinstance(config, self.Config):
            raise ConfigError(
                f"The 'config' parameter of {type(self).__name__} must be a "
                f"{self.Config.__name__}. Got {type(config).__name__} instead."
            )
        self.config: Any = config
        self.name = name or self.kind
        self.catalog: Catalog | None = None
        self.n_items_ = 0
        #: What fitting measured (examples, epochs, seconds), for the build's manifest.
        self.stats: dict[str, Any] = {}
        self._fitted = False

    # ---------------------------------------------------------------- fitting
    def fit(self, data: TrainingData) -> Self:
        """Learn or index from ``data``; returns self.

        Raises
        ------
        ConfigError
            If ``data`` is not a ``TrainingData`` or has no items, or the source lacks a
            field it needs (the message names it).
        """
        if not isinstance(data, TrainingData):
            raise ConfigError(
                f"{type(self).__name__}.fit takes a TrainingData. Got {type(data).__name__} "
                "instead."
            )
        if data.n_items < 1:
            raise ConfigError(f"{self.name} needs n_items >= 1. Got {data.n_items} instead.")
        self._fitted = False
        self._fit(data)
        self.catalog, self.n_items_, self._fitted = data.catalog, int(data.n_items), True
        return self

    @abstractmethod
    def _fit(self, data: TrainingData) -> None: ...

    @property
    def fitted(self) -> bool:
        """Whether the source was fitted or loaded."""
        return self._fitted

    def check_fitted(self) -> None:
        """Raise unless fitted.

        Raises
        ------
        NotFittedError
            If the source was not fitted or loaded.
        """
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} isn't fitted, call fit first")

    # ---------------------------------------------------------------- serving
    def allowed(self, query: SourceQuery) -> np.ndarray | None:
        """The boolean mask of items this query may return, or None for all.

        Raises
        ------
        ConfigError
            If the query has a filter and the source was fitted without a catalog.
        """
        mask = None
        if query.item_filter is not None and not query.item_filter.is_empty():
            if self.catalog is None:
                raise ConfigError(
                    f"{self.name} was fitted without a catalog, so it cannot filter: pass "
                    "TrainingData(catalog=...) or load it with the catalog."
                )
            mask = query.item_filter.mask(self.catalog)
        if query.exclude is not None and len(query.exclude):
            mask = np.ones(self.n_items_, dtype=bool) if mask is None else mask.copy()
            d = np.asarray(query.exclude, dtype=np.int64).ravel()
            mask[d[(d >= 0) & (d < self.n_items_)]] = False
        return mask

    def __call__(self, query: SourceQuery | None = None, k: int = 100) -> Candidates:
        """The top ``k`` candidates for the query, best first (at most the catalog).

        Raises
        ------
        NotFittedError
            If the source was not fitted or loaded.
        ConfigError
            If ``k`` is not an int >= 1.
        """
        self.check_fitted()
        k = min(check_k(k, type(self).__name__), self.n_items_)
        query = query or SourceQuery()
        items, _ = known_items(query.items, self.n_items_)
        history, weights = known_items(query.history, self.n_items_, query.weights)
        query = replace(query, items=items, history=history, weights=weights)
        return self._retrieve(query, k, self.allowed(query))

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        """The full-ranking sources' answer: the top of ``score`` for the query's history, or
        ``_from_seeds`` without one. Other sources override it."""
        if query.history is None:
            seeds = np.empty(0, np.int64) if query.items is None else query.items
            return self._from_seeds(seeds, k, allowed)
        return self._rank(query, k, allowed)

    def _from_seeds(self, seeds: np.ndarray, k: int, allowed: np.ndarray | None) -> Candidates:
        """Seed items (a product, a board) ranked as if they were a history."""
        return self._rank(SourceQuery(history=seeds), k, allowed)

    def batch(self, queries: Sequence[SourceQuery], k: int) -> list[Candidates]:
        """``[self(q, k) for q in queries]`` (a broad query's rows); an index that answers
        several queries in one pass overrides it with the same answers."""
        return [self(q, k) for q in queries]

    def search_many(self, query: SourceQuery, vectors: np.ndarray, k: int) -> list[Candidates]:
        """One list per query vector (a board's centroids); vector indexes batch them."""
        return [self(replace(query, vector=v), k) for v in np.atleast_2d(vectors)]

    def attach(self, sources: Mapping[str, CandidateSource]) -> None:
        """Link to the other loaded sources of a version (``dense/text_image`` searches the
        ``visual/image`` index); most sources need none. Loaders call it once all are loaded."""
        return None

    def item_vectors(self) -> np.ndarray | None:
        """The item vectors a vector source searches (``dense/*``, ``visual/*``), else None."""
        return None

    def score(
        self,
        histories: Sequence[np.ndarray],
        weights: Sequence[np.ndarray] | None = None,
        users: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Scores ``(len(histories), n_items)`` float32 of every item, higher is better.

        History items are NOT masked here: the caller excludes them.

        Raises
        ------
        ConfigError
            If the source does not rank the whole catalog (``full_ranking`` is False).
        NotFittedError
            If the source was not fitted or loaded.
        """
        if not self.full_ranking:
            raise ConfigError(
                f"{self.name} does not score the whole catalog for histories; the full-ranking "
                "protocol takes the sources whose full_ranking is True."
            )
        self.check_fitted()
        return self._score(histories, weights, users)

    def _score(
        self,
        histories: Sequence[np.ndarray],
        weights: Sequence[np.ndarray] | None,
        users: Sequence[str | None] | None,
    ) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover  (full_ranking sources implement it)

    def _rank(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        """The top ``k`` of ``score`` for the query's history (the full-ranking sources)."""
        history = np.empty(0, np.int64) if query.history is None else query.history
        w = None if query.weights is None else [query.weights]
        scores = np.asarray(self._score([history], w, [query.user])[0], dtype=np.float64)
        idx = top_k(scores, k, allowed)
        return Candidates.from_scores(idx, scores[idx], self.name)

    # ---------------------------------------------------------------- artifacts
    def save(self, folder: Path | str) -> None:
        """Write ``source.json`` and the source's state files into ``folder``.

        Raises
        ------
        NotFittedError
            If the source was not fitted.
        """
        self.check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = self._save(folder)
        meta = {
            "kind": self.kind,
            "name": self.name,
            "n_items": self.n_items_,
            "config": self.config.model_dump(mode="json"),
            "state": state,
        }
        (folder / SOURCE_FILE).write_text(json.dumps(meta, indent=2))

    @abstractmethod
    def _save(self, folder: Path) -> dict[str, Any]: ...

    @classmethod
    def load(cls, folder: Path | str, catalog: Catalog | None = None) -> Self:
        """Open a saved source of this class (with its catalog, for filters).

        Raises
        ------
        InputError
            If the folder holds no source, another kind, or a catalog of another size.
        """
        folder = Path(folder)
        meta = read_meta(folder)
        if meta["kind"] != cls.kind:
            raise InputError(f"{folder} holds a {meta['kind']!r} source, not {cls.kind!r}.")
        src = cls(cls.Config.model_validate(meta["config"]), meta.get("name"))
        src.n_items_ = int(meta["n_items"])
        if catalog is not None and len(catalog) != src.n_items_:
            raise InputError(
                f"The source in {folder} has {src.n_items_} items; the catalog has {len(catalog)}."
            )
        src.catalog = catalog
        src._load(folder, meta.get("state") or {})
        src._fitted = True
        return src

    @abstractmethod
    def _load(self, folder: Path, state: dict[str, Any]) -> None: ...


def read_meta(folder: Path) -> dict[str, Any]:
    """The ``source.json`` of a saved source.

    Raises
    ------
    InputError
        If there is none or it is not a source description.
    """
    path = Path(folder) / SOURCE_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"No saved candidate source in {folder}: {e}") from e
    if not isinstance(meta, dict) or not {"kind", "config", "n_items"} <= set(meta):
        raise InputError(
            f"{path} is not a candidate source description (kind, config, n_items): it was "
            "saved by an older moodboard; build the artifact again."
        )
    return meta


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` highest finite scores (restricted to ``allowed``), best first."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if allowed is not None:
        s[~allowed] = -np.inf
    valid = np.isfinite(s)
    n = int(valid.sum())
    if n == 0:
        return np.empty(0, dtype=np.int64)
    k = min(k, n)
    part = np.argpartition(-s, k - 1)[:k]
    return part[np.argsort(-s[part], kind="stable")]


def check_k(k: object, owner: str) -> int:
    """``k`` if it is an int >= 1.

    Raises
    ------
    ConfigError
        If it is not.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"The 'k' parameter of {owner} must be an int >= 1. Got {k!r} instead.")
    return int(k)


def allowed_except(n: int, *drops: np.ndarray | None) -> np.ndarray:
    """A mask of ``n`` items, False at every index in ``drops`` (out-of-range ones ignored)."""
    allowed = np.ones(n, dtype=bool)
    for drop in drops:
        if drop is not None:
            d = np.asarray(drop, dtype=np.int64).ravel()
            allowed[d[(d >= 0) & (d < n)]] = False
    return allowed
