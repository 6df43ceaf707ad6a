"""What every candidate source shares: a config, a query, and the fit/call template."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from moodboard.data import Candidates, Catalog, ItemFilter
from moodboard.errors import ConfigError, NotFittedError


class SourceConfig(BaseModel):
    """Base of every source's config: JSON round-trip, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class SourceQuery:
    """What a source may use to retrieve: text, a vector, seed items, a filter.

    Attributes
    ----------
    text
        The query text (already understood: spelling fixed, price phrases removed).
    vector
        A query embedding in the space of the source (text, image or user).
    items
        Seed item indices (related products, board ideas, a user's history).
    item_filter
        Hard constraints, applied inside retrieval.
    exclude
        Item indices never to return.
    """

    text: str | None = None
    vector: np.ndarray | None = None
    items: np.ndarray | None = None
    item_filter: ItemFilter | None = None
    exclude: np.ndarray | None = None


class Source(ABC):
    """A named candidate source.

    Subclasses set ``kind`` and ``Config``, implement ``_fit`` and ``_retrieve``; ``fit``
    and ``__call__`` do the bookkeeping (fitted check, k validation, filter mask).
    """

    kind: ClassVar[str]
    Config: ClassVar[type[SourceConfig]]

    def __init__(self, config: SourceConfig | None = None, name: str | None = None) -> None:
        self.config = config if config is not None else self.Config()
        self.name = name or self.kind
        self._fitted = False

    def fit(self, catalog: Catalog, **data: Any) -> Self:
        """Learn or index from the catalog (and source-specific data); returns self."""
        self.catalog = catalog
        self._fit(catalog, **data)
        self._fitted = True
        return self

    @abstractmethod
    def _fit(self, catalog: Catalog, **data: Any) -> None: ...

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(f"{type(self).__name__} isn't fitted, call fit first")

    def allowed(self, query: SourceQuery) -> np.ndarray | None:
        """The boolean mask of items this query may return, or None for all."""
        mask = None
        if query.item_filter is not None and not query.item_filter.is_empty():
            mask = query.item_filter.mask(self.catalog)
        if query.exclude is not None and len(query.exclude):
            mask = np.ones(len(self.catalog), dtype=bool) if mask is None else mask.copy()
            mask[np.asarray(query.exclude, dtype=np.int64)] = False
        return mask

    def __call__(self, query: SourceQuery, k: int = 100) -> Candidates:
        """The top ``k`` candidates for the query, best first.

        Raises
        ------
        NotFittedError
            If the source was not fitted or loaded.
        ConfigError
            If ``k`` is not a positive int.
        """
        self._check_fitted()
        if not isinstance(k, int) or k < 1:
            raise ConfigError(
                f"The 'k' parameter of {type(self).__name__} must be an int >= 1. "
                f"Got {k!r} instead."
            )
        k = min(k, max(1, len(self.catalog)))  # a source never has more items than its catalog
        return self._retrieve(query, k, self.allowed(query))

    @abstractmethod
    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates: ...


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
