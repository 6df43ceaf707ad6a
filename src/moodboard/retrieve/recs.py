"""The contract of recommenders learned from engagement sequences.

Every personalized source (``sequence``, ``two_tower``, ``graph/walks``, ``user_interests``)
and every baseline (``popularity``, ``als``, ``ease``, ``itemknn``) is fitted on users'
time-ordered item sequences and scores ALL items for a batch of histories, so one evaluation
runner measures them all under the same protocol and the feed fuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, Self, runtime_checkable

import numpy as np

from moodboard.data import Candidates


@dataclass(frozen=True)
class SequenceData:
    """Users' engagement as time-ordered item index sequences.

    Attributes
    ----------
    n_items
        Items are ``0 .. n_items - 1``.
    sequences
        One int array per user, oldest first (repeats allowed).
    item_features
        Optional per-item side information, e.g. ``{"text": (n_items, d) float32,
        "attributes": list of int arrays}``; sources that do not use it ignore it.
    weights
        Optional per-event weights aligned with ``sequences`` (action strength, recency).
    """

    n_items: int
    sequences: Sequence[np.ndarray]
    item_features: dict[str, object] = field(default_factory=dict)
    weights: Sequence[np.ndarray] | None = None


@runtime_checkable
class Recommender(Protocol):
    """A recommender: ``fit`` on sequences, then ``score`` every item for given histories."""

    name: str

    def fit(self, data: SequenceData) -> Self:
        """Learn from the training sequences; returns self."""
        ...

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores ``(len(histories), n_items)`` float32, higher is better.

        A history is the user's item sequence so far (oldest first), possibly longer than the
        one seen in ``fit`` (e.g. the validation item appended for the test step). Items in the
        history are NOT masked here: the caller excludes them.
        """
        ...


@runtime_checkable
class ItemNeighbours(Protocol):
    """A co-engagement source a surface can query with a set of items (a product, a board):
    ``graph/walks`` and ``user_interests``."""

    name: str

    def from_items(
        self, items: np.ndarray, k: int = 100, exclude: np.ndarray | None = None
    ) -> Candidates:
        """Up to ``k`` items engaged with like ``items``, best first; ``items`` and
        ``exclude`` left out, empty when no item is known."""
        ...
