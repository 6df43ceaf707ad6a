"""The one immutable type that flows between retrieve, rank and blend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Candidates:
    """Items with named score columns and the source each came from.

    Parameters
    ----------
    items
        Internal item indices, ``np.int32``.
    scores
        One float32 column per score name (``retrieval``, ``p_click``, ``utility``, ...),
        each as long as ``items``.
    sources
        The candidate source that produced each item (``"lexical/bm25"``, ...); fused
        candidates may carry several joined by ``+``.

    Raises
    ------
    ValueError
        If the columns' lengths disagree.
    """

    items: np.ndarray
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)
    sources: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __post_init__(self) -> None:
        items = _frozen(np.asarray(self.items, dtype=np.int32))
        n = len(items)
        scores = {k: _frozen(np.asarray(v, dtype=np.float32)) for k, v in self.scores.items()}
        srcs = np.asarray(self.sources, dtype=object)
        if srcs.size == 0 and n:
            srcs = np.full(n, "", dtype=object)
        for name, col in scores.items():
            if len(col) != n:
                raise ValueError(
                    f"The score column {name!r} of Candidates must have {n} values. "
                    f"Got {len(col)} instead."
                )
        if len(srcs) != n:
            raise ValueError(f"Candidates.sources must have {n} values. Got {len(srcs)} instead.")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "scores", MappingProxyType(scores))
        object.__setattr__(self, "sources", _frozen(srcs))

    @classmethod
    def empty(cls) -> Candidates:
        """No candidates."""
        return cls(np.empty(0, dtype=np.int32))

    @classmethod
    def from_scores(
        cls,
        items: Sequence[int] | np.ndarray,
        score: np.ndarray,
        source: str,
        name: str = "retrieval",
    ) -> Candidates:
        """Candidates of one source with one score column."""
        items = np.asarray(items, dtype=np.int32)
        return cls(items, {name: score}, np.full(len(items), source, dtype=object))

    def __len__(self) -> int:
        return len(self.items)

    def score(self, name: str) -> np.ndarray:
        """One score column.

        Raises
        ------
        KeyError
            If there is no such column.
        """
        if name not in self.scores:
            raise KeyError(f"Candidates have no score {name!r}; they have {sorted(self.scores)}.")
        return self.scores[name]

    def with_score(self, name: str, values: np.ndarray) -> Candidates:
        """A copy with one score column added or replaced."""
        return Candidates(self.items, {**self.scores, name: values}, self.sources)

    def take(self, order: np.ndarray | Sequence[int]) -> Candidates:
        """A copy with rows in the given positional order (a subset is allowed)."""
        idx = np.asarray(order, dtype=np.int64)
        return Candidates(
            self.items[idx], {k: v[idx] for k, v in self.scores.items()}, self.sources[idx]
        )

    def sort_by(self, name: str, k: int | None = None) -> Candidates:
        """A copy sorted by one score, descending (stable), optionally cut to ``k``."""
        order = np.argsort(-self.score(name), kind="stable")
        return self.take(order if k is None else order[:k])

    def head(self, k: int) -> Candidates:
        """The first ``k`` rows."""
        return self.take(np.arange(min(k, len(self))))

    def exclude(self, items: np.ndarray | Sequence[int]) -> Candidates:
        """A copy without the given item indices."""
        keep = ~np.isin(self.items, np.asarray(items, dtype=np.int32))
        return self.take(np.flatnonzero(keep))
