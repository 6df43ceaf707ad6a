"""Slot rules: at most ``max_items`` items of one category (or brand, ...) in any window of
``window`` consecutive positions.

``SlotRules`` walks the page position by position and places the best remaining candidate
(in the incoming order, e.g. after ``DPP``) that breaks no rule given the items placed just
before it; a candidate that would break a rule waits and is tried again at the next position.
When no remaining candidate fits at a position (the rules are infeasible for what is left,
e.g. every remaining item is of a category the window already holds ``max_items`` of and
nothing else is left), the remaining candidates are *deferred*: they follow the placed ones in
their incoming order and carry ``deferred = 1``. The rules hold over every placed (not
deferred) position; the surface decides whether deferred items may fill the page.

Attribute values are integer codes per catalog item; a negative code (unknown brand) never
counts against a rule.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import numpy as np
from pydantic import Field, model_validator

from moodboard.blend._base import BlendConfig, rows_of
from moodboard.data import Candidates
from moodboard.errors import ConfigError

#: The score column that marks deferred candidates (1) after the placed ones (0).
DEFERRED = "deferred"


class SlotRule(BlendConfig):
    """At most ``max_items`` items sharing a value of ``attribute`` in any ``window``
    consecutive positions."""

    attribute: str
    max_items: int = Field(ge=1)
    window: int = Field(ge=1)

    @model_validator(mode="after")
    def _binding(self) -> SlotRule:
        if self.max_items >= self.window:
            raise ValueError(
                f"The 'max_items' of SlotRule must be below its 'window' ({self.window}) to "
                f"constrain anything. Got {self.max_items} instead."
            )
        return self


class SlotRulesConfig(BlendConfig):
    """The page's slot rules and how deep they apply.

    Attributes
    ----------
    rules
        Each rule on its own attribute (several rules may share one).
    depth
        Positions governed by the rules; later candidates follow in their order.
    """

    rules: tuple[SlotRule, ...] = (
        SlotRule(attribute="category", max_items=3, window=6),
        SlotRule(attribute="brand", max_items=2, window=6),
    )
    depth: int = Field(default=100, ge=1, le=5_000)


class SlotRules:
    """Places candidates under window rules per attribute (see the module docstring).

    Parameters
    ----------
    config
        The rules; ``SlotRulesConfig()`` when None.
    """

    def __init__(self, config: SlotRulesConfig | None = None) -> None:
        self.config = config or SlotRulesConfig()

    def fit(self) -> SlotRules:
        """Nothing to learn; returns ``self``."""
        return self

    def __call__(self, cand: Candidates, attributes: Mapping[str, np.ndarray]) -> Candidates:
        """``cand`` re-ordered so the rules hold over the first ``depth`` placed positions,
        with a ``deferred`` column (1 for candidates no position could take).

        Parameters
        ----------
        cand
            Candidates, best first.
        attributes
            Attribute name -> integer codes of every catalog item (rows by item index).

        Raises
        ------
        ConfigError
            If a rule's attribute is not among ``attributes`` or has no row for a candidate.
        """
        rules = self.config.rules
        missing = sorted({r.attribute for r in rules} - set(attributes))
        if missing:
            raise ConfigError(
                f"SlotRules need the attributes {missing} of every item. Got "
                f"{sorted(attributes)} instead: pass their codes or drop those rules."
            )
        codes = [
            rows_of(attributes[r.attribute], cand, r.attribute, "SlotRules").astype(np.int64)
            for r in rules
        ]
        order, n_placed = self._place(codes, len(cand))
        deferred = np.zeros(len(cand))
        if n_placed < min(self.config.depth, len(cand)):  # stuck: the rest cannot be placed
            deferred[n_placed:] = 1.0
        return cand.take(order).with_score(DEFERRED, deferred)

    def _place(self, codes: list[np.ndarray], n: int) -> tuple[np.ndarray, int]:
        """The placed order (then the deferred, then beyond the depth) and how many placed."""
        depth = min(self.config.depth, n)
        ints = [c.tolist() for c in codes]  # Python ints: the loop below indexes them often
        # the last ``window - 1`` placed codes per rule, and the counts of each code in them
        windows = [deque(maxlen=r.window - 1) for r in self.config.rules]
        counts: list[dict[int, int]] = [{} for _ in self.config.rules]
        caps = [r.max_items for r in self.config.rules]
        waiting = list(range(n))
        placed: list[int] = []
        checks = list(zip(ints, counts, caps, strict=True))
        while len(placed) < depth:
            pick = -1
            for pos, i in enumerate(waiting):  # plain loops: this runs ~2,000 times a page
                for code, cnt, cap in checks:
                    v = code[i]
                    if v >= 0 and cnt.get(v, 0) >= cap:
                        break
                else:
                    pick = pos
                    break
            if pick < 0:
                break
            i = waiting.pop(pick)
            placed.append(i)
            for code, cnt, win in zip(ints, counts, windows, strict=True):
                if len(win) == win.maxlen and win[0] >= 0:  # leaves the window
                    cnt[win[0]] -= 1
                v = code[i]
                win.append(v)
                if v >= 0:
                    cnt[v] = cnt.get(v, 0) + 1
        return np.asarray(placed + waiting, dtype=np.int64), len(placed)
