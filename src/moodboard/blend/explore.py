"""Exploration on a page: the seeded random slice and the page with a policy's picks.

``request_rng`` seeds every per-request draw by (seed, user, request key): the same key gives
the same draw, so a feed pages on consistently and a replayed request shows the same page; a
new key (a new day, a new session) shows other items (ARCHITECTURE.md, convention 8).
``explore_slice`` draws uniformly random allowed items; ``explore_page`` puts a policy's picks
(``moodboard.blend.bandits``) into a page's explore slots with the propensities to log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from moodboard.blend.slots import interleave
from moodboard.data import Candidates
from moodboard.data import columns as C
from moodboard.retrieve.item_features import user_hash

if TYPE_CHECKING:
    from moodboard.blend.bandits import SlateChoice

#: The provenance of the exploration slice.
EXPLORE = "explore/random"
#: 1 for an item an explore policy placed, 0 for one placed deterministically.
EXPLORED = "explored"
#: The probability of the page up to and including the row.
CASCADE = "propensity_cascade"


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


def explore_page(
    main: Candidates, pool: Candidates, choice: SlateChoice, at: np.ndarray, k: int
) -> Candidates:
    """A page of ``k``: the policy's picks from ``pool`` at positions ``at``, ``main`` elsewhere,
    with the propensities every impression logs.

    The whole ``pool`` is taken out of ``main`` first (drawn or not), so the main items and
    their positions do not depend on the draw: they log propensity 1 and ``explored`` 0.

    Parameters
    ----------
    main
        The deterministic list (utility, diversity, slot rules), best first.
    pool
        The explore arms (e.g. fresh items) the policy chose among, in the order it was given.
    choice
        The policy's ``SlateChoice`` over ``pool`` (its ``order`` indexes ``pool``).
    at
        The explore slots' positions (``slots``); picks fill them in slot order.
    k
        The page length.

    Returns
    -------
    Candidates
        Up to ``k`` rows with ``propensity`` (the per-slot marginal; 1 for main items),
        ``propensity_cascade`` (the probability of the page up to and including the row: the
        last row's value is the page's probability) and ``explored`` (1 for the picks).
    """
    main = main.exclude(pool.items)
    picks = pool.take(choice.order)
    main = main.with_score(C.PROPENSITY, np.ones(len(main)))
    main = main.with_score(EXPLORED, np.zeros(len(main)))
    picks = picks.with_score(C.PROPENSITY, choice.propensity)
    picks = picks.with_score(EXPLORED, np.ones(len(picks)))
    page = interleave(main, picks, k, np.asarray(at, dtype=np.int64))
    explored = page.score(EXPLORED) > 0
    nth = np.cumsum(explored) - 1
    casc = np.asarray(choice.cascade, dtype=np.float64)
    page_casc = np.where(nth >= 0, casc[nth.clip(0)] if len(casc) else 1.0, 1.0)
    return page.with_score(CASCADE, page_casc)
