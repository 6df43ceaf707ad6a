"""Return dynamics: whether a simulated shopper comes back tomorrow (``simulate.returns``).

A shopper's chance of a visit on the next day follows what happened on the last visit:

    logit P(visit on d + 1) = logit(base) + satisfaction * (S - satisfaction_ref)
                              - repetition * R - boredom * B

- ``S``, satisfaction: the value of the day's actions per page seen, clicks and saves and
  carts counting 1, purchases 3, hides -2 (``VALUE``);
- ``R``, repetition: the share of the day's impressions of items the shopper had already been
  shown on an earlier page (that day or before);
- ``B``, boredom: the share of the day's impressions in its most shown category
  (``articleType`` where the catalog has it, else its first attribute), 0 without one.

After a day away the log-odds move ``recovery`` of the way back to ``logit(base)``. The first
simulated day is always a visit (the shopper was acquired then). With common random numbers
the visit is drawn from a generator of (seed, shopper, day), so two arms that satisfy a
shopper alike send them back on the same days.
"""

from __future__ import annotations

import math

import numpy as np

from moodboard.config import ReturnSettings
from moodboard.simulate.clickmodel import Outcome

#: The value of each action in the satisfaction ``S``.
VALUE = {"click": 1.0, "save": 1.0, "cart": 1.0, "purchase": 3.0, "hide": -2.0}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


class ReturnState:
    """One shopper's return dynamics across simulated days.

    Parameters
    ----------
    settings
        The dynamics' parameters.
    category
        The category code of every item of the world (``-1``: none), or None.
    """

    def __init__(self, settings: ReturnSettings, category: np.ndarray | None = None) -> None:
        self.settings = settings
        self.category = category
        self.logit = _logit(settings.base)
        self.first = True
        self.seen: set[int] = set()
        self.visits = 0
        self._reset_day()

    def _reset_day(self) -> None:
        self.pages = 0
        self.value = 0.0
        self.shown = 0
        self.repeats = 0
        self.categories: list[np.ndarray] = []

    @property
    def probability(self) -> float:
        """The chance of a visit on the next day."""
        return 1.0 if self.first else 1.0 / (1.0 + math.exp(-self.logit))

    def visits_today(self, u: float) -> bool:
        """Whether the shopper visits today, given a uniform draw ``u`` in [0, 1)."""
        return u < self.probability

    def see(self, items: np.ndarray, outcome: Outcome) -> None:
        """Record one page: the items shown (world indices) and what the shopper did."""
        items = np.asarray(items, dtype=np.int64)
        self.pages += 1
        self.value += sum(
            float(np.count_nonzero(getattr(outcome, a))) * w for a, w in VALUE.items()
        )
        repeated = sum(int(i) in self.seen for i in items)
        self.repeats += repeated
        self.shown += len(items)
        self.seen.update(int(i) for i in items)
        if self.category is not None:
            self.categories.append(self.category[items])

    def day_signals(self) -> tuple[float, float, float]:
        """``(S, R, B)`` of the day so far (see the module docstring)."""
        s = self.value / self.pages if self.pages else 0.0
        r = self.repeats / self.shown if self.shown else 0.0
        b = 0.0
        if self.categories:
            cats = np.concatenate(self.categories)
            cats = cats[cats >= 0]
            if len(cats):
                b = float(np.bincount(cats).max() / len(cats))
        return s, r, b

    def end_day(self, visited: bool) -> None:
        """Close a day: the next day's chance follows the visit, or drifts back to ``base``."""
        st = self.settings
        base = _logit(st.base)
        if visited:
            self.visits += 1
            s, r, b = self.day_signals()
            self.logit = (
                base
                + st.satisfaction * (s - st.satisfaction_ref)
                - st.repetition * r
                - st.boredom * b
            )
        else:
            self.logit += st.recovery * (base - self.logit)
        self.first = False
        self._reset_day()


def sessions_of_visit(rng: np.random.Generator, settings: ReturnSettings) -> int:
    """The number of sessions of a visit: ``1 + Poisson(sessions_per_visit - 1)``."""
    return 1 + int(rng.poisson(settings.sessions_per_visit - 1))


def category_codes(codes: dict[str, np.ndarray]) -> np.ndarray | None:
    """The category code of each item: ``articleType`` where the world has it, else its first
    attribute, else None."""
    if "articleType" in codes:
        return codes["articleType"]
    return next(iter(codes.values()), None)
