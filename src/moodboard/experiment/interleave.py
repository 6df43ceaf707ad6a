"""Team-draft interleaving: two rankers on one page, the clicks say which one shoppers prefer.

``team_draft`` merges two rankings (Radlinski, Kurup and Joachims 2008, "How does clickthrough
data reflect retrieval quality?"): each round a fair coin decides which team picks first, then
each team in turn adds its highest-ranked item not yet on the page, until the page holds ``k``
items or both rankings are used up (a team whose ranking is used up skips its turns). Each
shown item carries its team (0 = A, 1 = B); an item both rankings hold belongs to the team that
placed it.

``credit`` counts a page's clicks per team. Two ways to aggregate them per user:

- **per page** (``page_outcome``; the default of ``simulate.interleave``): each page (each
  query, in the literature: Chapelle, Joachims, Radlinski and Yue 2012, "Large-scale
  validation and analysis of interleaved search evaluation") is won by the team with more of
  its clicks; a page without clicks, or with as many on each side, is a tie and carries no
  information. A user's ``a_u`` and ``b_u`` are the pages A and B won. Pages, not queries of
  different users, are the unit of credit, the user the unit of analysis (a user's pages are
  not independent), so every user exposed counts in the verdict and the sample size, including
  those whose pages were all ties (their preference is 0): an experiment cannot pick its
  clicking users in advance;
- **per click**: ``a_u`` and ``b_u`` are the user's clicks on A's and B's items, summed over
  the user's pages (a heavy clicker weighs more within the user, never across users).

``preference`` turns each user's ``a_u`` and ``b_u`` (either kind) into the verdict:

- per user, the outcome ``+1`` (``a_u > b_u``), ``-1`` (``b_u > a_u``) or ``0`` (a tie,
  nothing credited included), and the preference ``delta_u = (a_u - b_u) / (a_u + b_u)``
  (0 when nothing was credited);
- the two-sided sign test on the users with an outcome (``scipy.stats.binomtest`` of A's wins
  among the users with a winner, ``p = 0.5``): ``winner`` is the side with more wins when
  ``p_value < alpha``, else None;
- ``delta``, the mean of ``delta_u`` over all users (ties and users without clicks count 0),
  with its t interval.

Sample sizes at two-sided level ``alpha`` and power ``power`` (``z = z_{1-alpha/2} + z_power``):
``interleaving_users_needed`` is ``z^2 * var(delta_u) / mean(delta_u)^2`` users (one-sample test
of the mean preference), ``ab_users_needed`` the users of an unpaired 50/50 A/B test of a
per-user metric, ``2 n`` with ``n = 2 z^2 ((var_A + var_B) / 2) / (mean_A - mean_B)^2`` per
arm.

Per-request randomness: ``request_rng(seed, user_id, request_id)`` is a generator of the seed and
stable hashes of the two ids, so a request's interleaving is the same wherever it is computed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from moodboard.errors import ConfigError

#: The team of an item: A's or B's.
TEAM_A, TEAM_B = 0, 1


@dataclass(frozen=True)
class Interleaved:
    """An interleaved page: ``items`` in display order and each one's team (0 = A, 1 = B)."""

    items: np.ndarray
    teams: np.ndarray


def _ranking(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(
            f"The '{name}' parameter of team_draft must be a 1-d array of item indices. Got "
            f"shape {arr.shape} and dtype {arr.dtype} instead."
        )
    arr = arr.astype(np.int64, copy=False)
    if len(np.unique(arr)) != len(arr):
        raise ConfigError(
            f"The '{name}' parameter of team_draft must hold each item once. Got "
            f"{len(arr) - len(np.unique(arr))} duplicates instead."
        )
    return arr


def team_draft(a: np.ndarray, b: np.ndarray, k: int, rng: np.random.Generator) -> Interleaved:
    """The team-draft interleaving of rankings ``a`` and ``b`` (see the module docstring).

    Parameters
    ----------
    a, b
        Item indices, best first, each item at most once per ranking (the two may overlap and
        differ in length).
    k
        The page size: at most ``k`` items are returned (fewer when the rankings run out).
    rng
        Draws one coin per round; the same generator state gives the same page.

    Raises
    ------
    ConfigError
        If ``k`` is not an int >= 1, or a ranking is not a 1-d integer array without
        duplicates.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(
            f"The 'k' parameter of team_draft must be an int >= 1. Got {k!r} instead."
        )
    lists = (_ranking(a, "a"), _ranking(b, "b"))
    next_of = [0, 0]  # each team's position in its ranking
    shown: set[int] = set()
    items: list[int] = []
    teams: list[int] = []

    def pick(team: int) -> bool:
        ranking = lists[team]
        i = next_of[team]
        while i < len(ranking) and int(ranking[i]) in shown:
            i += 1
        next_of[team] = i + 1
        if i >= len(ranking):
            return False
        shown.add(int(ranking[i]))
        items.append(int(ranking[i]))
        teams.append(team)
        return True

    while len(items) < k:
        first = int(rng.integers(2))
        picked = False
        for team in (first, 1 - first):
            if len(items) < k:
                picked |= pick(team)
        if not picked:
            break
    return Interleaved(np.array(items, dtype=np.int64), np.array(teams, dtype=np.int8))


def credit(teams: np.ndarray, clicked: np.ndarray) -> tuple[int, int]:
    """The clicks of one interleaved page credited to A and to B.

    Parameters
    ----------
    teams
        Each shown item's team (0 = A, 1 = B), in display order.
    clicked
        Whether each shown item was clicked, same order.

    Raises
    ------
    ConfigError
        If the arrays differ in length or a team is not 0 or 1.
    """
    t, c = np.asarray(teams), np.asarray(clicked, dtype=bool)
    if t.shape != c.shape or t.ndim != 1 or not np.isin(t, (TEAM_A, TEAM_B)).all():
        raise ConfigError(
            "The 'teams' and 'clicked' parameters of credit must be 1-d arrays of the same "
            f"length with teams 0 or 1. Got shapes {t.shape} and {c.shape} instead."
        )
    return int(np.sum(c & (t == TEAM_A))), int(np.sum(c & (t == TEAM_B)))


def page_outcome(clicks_a: int, clicks_b: int) -> tuple[int, int]:
    """The per-page credit of a page's clicks credited to A and to B (as ``credit``): ``(1, 0)``
    when A got more, ``(0, 1)`` when B did, ``(0, 0)`` for a tie or a page without clicks."""
    return int(clicks_a > clicks_b), int(clicks_b > clicks_a)


@dataclass(frozen=True)
class InterleavingVerdict:
    """Which ranker the users preferred (see the module docstring).

    Attributes
    ----------
    winner
        ``"A"``, ``"B"`` or None (no significant preference at ``alpha``).
    p_value
        The two-sided sign test's p-value on the users with a winner (1.0 without any).
    wins_a, wins_b, ties
        Users whose clicks went more to A, more to B, or evenly (no clicks included).
    users
        All users.
    delta, ci
        The mean per-user preference ``(a - b) / (a + b)`` over all users and its t interval.
    """

    winner: Literal["A", "B"] | None
    p_value: float
    wins_a: int
    wins_b: int
    ties: int
    users: int
    delta: float
    ci: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "winner": self.winner,
            "p_value": self.p_value,
            "wins_a": self.wins_a,
            "wins_b": self.wins_b,
            "ties": self.ties,
            "users": self.users,
            "delta": self.delta,
            "ci": list(self.ci),
        }


def _per_user(a: np.ndarray, b: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 1 or (x < 0).any() or (y < 0).any():
        raise ConfigError(
            f"The per-user clicks given to {name} must be two 1-d arrays of the same length "
            f"(one count >= 0 per user, at least one user). Got shapes {x.shape} and "
            f"{y.shape} instead."
        )
    return x, y


def user_preferences(clicks_a: np.ndarray, clicks_b: np.ndarray) -> np.ndarray:
    """Each user's preference ``(a - b) / (a + b)`` in [-1, 1] (0 for a user without clicks).

    Raises
    ------
    ConfigError
        If the arrays differ in length, are empty or hold a negative count.
    """
    a, b = _per_user(clicks_a, clicks_b, "user_preferences")
    total = a + b
    return np.divide(a - b, total, out=np.zeros_like(total), where=total > 0)


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The t interval of the mean of ``x`` (``(mean, mean)`` for a constant ``x``, NaNs for
    fewer than 2 values)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return math.nan, math.nan
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd == 0.0:
        return mean, mean
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    return mean - half, mean + half


def preference(
    clicks_a: np.ndarray, clicks_b: np.ndarray, *, alpha: float = 0.05, level: float = 0.95
) -> InterleavingVerdict:
    """The verdict of an interleaving experiment from each user's clicks credited to A and B.

    Parameters
    ----------
    clicks_a, clicks_b
        Per user, the clicks on A's and on B's items over the user's interleaved pages.
    alpha
        The sign test's level: below it the side with more wins is the winner.
    level
        The confidence level of ``delta``'s interval.

    Raises
    ------
    ConfigError
        If the arrays differ in length, are empty or hold a negative count, or ``alpha`` or
        ``level`` is not in (0, 1).
    """
    if not 0 < alpha < 1 or not 0 < level < 1:
        raise ConfigError(
            f"The 'alpha' and 'level' parameters of preference must be in (0, 1). Got {alpha} "
            f"and {level} instead."
        )
    a, b = _per_user(clicks_a, clicks_b, "preference")
    wins_a, wins_b = int(np.sum(a > b)), int(np.sum(b > a))
    decided = wins_a + wins_b
    p = float(stats.binomtest(wins_a, decided, 0.5).pvalue) if decided else 1.0
    winner: Literal["A", "B"] | None = None
    if p < alpha and wins_a != wins_b:
        winner = "A" if wins_a > wins_b else "B"
    pref = user_preferences(a, b)
    return InterleavingVerdict(
        winner,
        p,
        wins_a,
        wins_b,
        len(a) - decided,
        len(a),
        float(pref.mean()),
        t_interval(pref, level),
    )


def _z(alpha: float, power: float) -> float:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(
            f"The 'alpha' and 'power' parameters of a sample size must be in (0, 1). Got "
            f"{alpha} and {power} instead."
        )
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def interleaving_users_needed(
    preferences: np.ndarray, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Users an interleaving experiment needs to find the mean preference of ``preferences``
    (one value per user, as ``user_preferences``) different from 0: ``z^2 var / mean^2``
    (``inf`` for a mean of 0).

    Raises
    ------
    ConfigError
        If there are fewer than 2 users, or ``alpha`` or ``power`` is not in (0, 1).
    """
    z = _z(alpha, power)
    x = np.asarray(preferences, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise ConfigError(
            f"A sample size needs at least 2 users' preferences. Got shape {x.shape} instead."
        )
    mean = float(x.mean())
    return math.inf if mean == 0 else z**2 * float(x.var(ddof=1)) / mean**2


def ab_users_needed(
    metric_a: np.ndarray, metric_b: np.ndarray, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Users (both arms together, split 50/50) an unpaired A/B test needs to detect the
    difference of the means of a per-user metric observed in ``metric_a`` and ``metric_b``:
    ``2 n`` with ``n = 2 z^2 ((var_A + var_B) / 2) / (mean_A - mean_B)^2`` per arm (``inf`` for
    equal means).

    Raises
    ------
    ConfigError
        If an arm has fewer than 2 users, or ``alpha`` or ``power`` is not in (0, 1).
    """
    z = _z(alpha, power)
    x, y = np.asarray(metric_a, dtype=np.float64), np.asarray(metric_b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
        raise ConfigError(
            f"A sample size needs at least 2 users per arm. Got shapes {x.shape} and {y.shape} "
            "instead."
        )
    delta = float(x.mean() - y.mean())
    if delta == 0:
        return math.inf
    per_arm = 2 * z**2 * (float(x.var(ddof=1)) + float(y.var(ddof=1))) / 2 / delta**2
    return 2 * per_arm


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def request_rng(seed: int, user_id: str | None, request_id: str) -> np.random.Generator:
    """The generator of one request: of ``seed`` and the stable hashes of the user id (empty
    for an anonymous user) and the request id."""
    return np.random.default_rng([seed, stable_hash(user_id or ""), stable_hash(request_id)])
