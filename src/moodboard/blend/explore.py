"""The exploration slice: random allowed items, seeded by (seed, user, request key).

The same key gives the same slice, so a feed pages on consistently; a new key (a new day, a
new session) shows other items (ARCHITECTURE.md, convention 8).
"""

from __future__ import annotations

import numpy as np

from moodboard.data import Candidates
from moodboard.retrieve.item_features import user_hash

#: The provenance of the exploration slice.
EXPLORE = "explore/random"


def request_rng(seed: int, user: str | None, key: str | int) -> np.random.Generator:
    """The random generator of one request: seeded by (seed, user, request key)."""
    return np.random.default_rng([seed, user_hash(user), user_hash(str(key))])


def explore_slice(
    n: int,
    allowed: np.ndarray,
    taken: np.ndarray,
    seed: int,
    user: str | None,
    key: str | int,
) -> Candidates:
    """``n`` random items among ``allowed`` and not in ``taken``.

    Parameters
    ----------
    n
        How many (0 or less: none).
    allowed
        A boolean mask over the catalog (the request's filter and exclusions).
    taken
        Item indices already on the page.
    seed, user, key
        Seed the draw (see ``request_rng``).

    Returns
    -------
    Candidates
        Up to ``n`` items with ``retrieval`` 0 and provenance ``explore/random``.
    """
    if n <= 0:
        return Candidates.empty()
    pool = np.asarray(allowed, dtype=bool).copy()
    pool[np.asarray(taken, dtype=np.int64)] = False
    items = request_rng(seed, user, key).permutation(np.flatnonzero(pool))[:n]
    return Candidates.from_scores(items, np.zeros(len(items)), EXPLORE)
