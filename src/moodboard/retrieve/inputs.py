"""What a candidate source learns from (``TrainingData``) and what it is asked (``SourceQuery``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moodboard.data import Catalog, ItemFilter
from moodboard.errors import ConfigError


@dataclass(frozen=True)
class TrainingData:
    """What any source may learn from; every field is optional.

    Attributes
    ----------
    n_items
        Items are ``0 .. n_items - 1`` (taken from ``catalog`` when 0).
    sequences
        One int array per user, oldest first (repeats allowed).
    item_features
        Per-item side information by name, e.g. ``"text"`` / ``"image"`` ``(n_items, d)``
        float32 vectors, ``"attributes"`` codes, ``"popularity"`` scores; sources that do not
        use one ignore it.
    weights
        Per-event weights aligned with ``sequences`` (action strength).
    users
        The user id of each sequence.
    catalog
        The items themselves (text, prices, attributes: what filters and lexical need).
    validation
        Held-out histories and their next items, for early stopping.

    Raises
    ------
    ConfigError
        If ``n_items`` disagrees with the catalog or sequences and users do not align.
    """

    n_items: int = 0
    sequences: Sequence[np.ndarray] = ()
    item_features: Mapping[str, object] = field(default_factory=dict)
    weights: Sequence[np.ndarray] | None = None
    users: Sequence[str] | None = None
    catalog: Catalog | None = None
    validation: tuple[Sequence[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.catalog is not None:
            if self.n_items == 0:
                object.__setattr__(self, "n_items", len(self.catalog))
            elif self.n_items != len(self.catalog):
                raise ConfigError(
                    f"TrainingData.n_items must match the catalog ({len(self.catalog)}). "
                    f"Got {self.n_items} instead."
                )
        if self.users is not None and len(self.users) != len(self.sequences):
            raise ConfigError(
                f"TrainingData.users must name one user per sequence ({len(self.sequences)}). "
                f"Got {len(self.users)} instead."
            )


@dataclass(frozen=True)
class SourceQuery:
    """What a source may use to retrieve.

    Attributes
    ----------
    text
        The query text (already understood: spelling fixed, price phrases removed).
    vector
        A query embedding in the space of the source (text or image).
    items
        Seed item indices (the product of a product page, a board's items).
    history
        The user's engaged items, oldest first (the feed).
    weights
        One action weight per ``history`` item (a save weighs more than a click).
    user
        The user's id (None: anonymous).
    item_filter
        Hard constraints, applied inside retrieval.
    exclude
        Item indices never to return.
    fuzzy
        Whether a lexical source also matches misspelt words (fuzzy terms). A broad query's
        rows ask without: the query was spell-corrected, and its own list matched loosely.
    """

    text: str | None = None
    vector: np.ndarray | None = None
    items: np.ndarray | None = None
    history: np.ndarray | None = None
    weights: np.ndarray | None = None
    user: str | None = None
    item_filter: ItemFilter | None = None
    exclude: np.ndarray | None = None
    fuzzy: bool = True


def known_items(items: np.ndarray | None, n: int, weights: np.ndarray | None = None) -> Any:
    """``items`` (and aligned ``weights``) without the indices outside ``0 .. n - 1``."""
    if items is None:
        return None, weights
    a = np.asarray(items, dtype=np.int64).ravel()
    keep = (a >= 0) & (a < n)
    w = weights
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if len(w) != len(a):
            raise ConfigError(
                f"SourceQuery.weights must have one weight per history item ({len(a)}). "
                f"Got {len(w)} instead."
            )
        w = w[keep]
    return a[keep], w
