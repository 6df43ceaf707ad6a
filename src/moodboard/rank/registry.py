"""The rank stage's components by name: ``rank/noop``, ``rank/shuffle`` (experiment control
arms), and any ranker registered later (``rank/lambdamart``).

A ranker is built from ``(seed, resources)`` (the engine's named resources: a learned ranker
finds its model or features there) and called with the candidates and a ``RankQuery`` (who asks,
the request id, what was asked); it returns the same items in its order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from moodboard.data import Candidates
from moodboard.errors import ConfigError
from moodboard.retrieve.item_features import user_hash

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankQuery:
    """What a ranker may know of the request.

    Attributes
    ----------
    user
        The shopper's id (None: anonymous).
    request_id
        The request's id (seeds per-request randomness with the user).
    text
        The query text, for query-dependent rankers.
    context
        Whatever the surface's prepare step adds (e.g. the parsed query).
    ts
        The request's time (the runner sets it from ``Request.ts``: the simulated clock in a
        simulation). A ranker that reads time (time gaps, point-in-time counts) reads this,
        never the wall clock.
    """

    user: str | None = None
    request_id: str = ""
    text: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    ts: datetime | None = None


class Ranker(Protocol):
    """A rank-stage component: ``(candidates, query) -> candidates`` in its order."""

    name: str

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        """The candidates re-ordered."""
        ...


class NoopRanker:
    """Keeps the order it is given (the default rank stage)."""

    name = "rank/noop"

    def __init__(self, seed: int = 0, resources: Mapping[str, Any] | None = None) -> None:
        self.seed = seed

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        """``cand`` as it is."""
        return cand


class ShuffleRanker:
    """A random order, seeded by (seed, user, request id): a control arm for experiments."""

    name = "rank/shuffle"

    def __init__(self, seed: int = 0, resources: Mapping[str, Any] | None = None) -> None:
        self.seed = seed

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        """``cand`` in a random order that replays for the same (seed, user, request)."""
        rng = np.random.default_rng([self.seed, user_hash(query.user), user_hash(query.request_id)])
        return cand.take(rng.permutation(len(cand)).astype(np.int64))


#: A ranker factory: ``(seed, resources) -> Ranker``.
RankerFactory = Callable[[int, Mapping[str, Any]], Ranker]

#: Registry name -> ranker factory.
RANKERS: dict[str, RankerFactory] = {
    NoopRanker.name: NoopRanker,
    ShuffleRanker.name: ShuffleRanker,
}


def register_ranker(name: str, factory: RankerFactory) -> None:
    """Register a ranker under ``name`` (``rank/<kind>``), replacing one of that name.

    Raises
    ------
    ConfigError
        If ``name`` does not start with ``rank/``.
    """
    if not name.startswith("rank/"):
        raise ConfigError(f"A ranker's name must start with 'rank/'. Got {name!r} instead.")
    RANKERS[name] = factory


def make_ranker(name: str, seed: int = 0, resources: Mapping[str, Any] | None = None) -> Ranker:
    """The ranker registered as ``name``, seeded, with the engine's named ``resources``.

    Raises
    ------
    ConfigError
        If no ranker has that name.
    """
    try:
        factory = RANKERS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown ranker {name!r}: choose among {', '.join(sorted(RANKERS))}."
        ) from None
    return factory(seed, resources or {})
