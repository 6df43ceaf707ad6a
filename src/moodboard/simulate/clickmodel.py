"""The simulated shoppers' click model: position-based (examination x attraction).

A shopper looks at the item in position ``k`` (1 = top) with probability

    examination(k) = k ** -eta                      (eta = ``position_bias_eta``, 0.8 default)

and, having looked, is attracted by it with a probability that depends only on the shopper's
true tastes (see ``world.Shopper``):

    attraction(u, i) = sigmoid(scale * affinity(u, i) + offset)

so ``P(click | k, u, i) = examination(k) * attraction(u, i)``. After a click the funnel goes on:
``P(save | click) = min(1, 2 * p_save * attraction)``, ``P(add_to_cart | click) =
min(1, 2 * p_cart * attraction)``, ``P(purchase | add_to_cart) = p_purchase``; an examined item
that was not clicked is hidden with probability ``p_hide * (1 - attraction)``. When items are
shown in random order, attraction is independent of position, so the click-through rate at
position ``k`` divided by that at position 1 is ``k ** -eta``: the documented bias curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moodboard.config import ClickModelSettings


@dataclass(frozen=True)
class Outcome:
    """What a shopper did with one page, one boolean array per action, in position order."""

    click: np.ndarray
    save: np.ndarray
    cart: np.ndarray
    purchase: np.ndarray
    hide: np.ndarray


class PositionBiasedClickModel:
    """Examination x attraction, with a save / cart / purchase funnel after the click.

    Parameters
    ----------
    settings
        The model's parameters (see the module docstring).
    """

    def __init__(self, settings: ClickModelSettings | None = None) -> None:
        self.settings = settings or ClickModelSettings()

    def examination(self, positions: np.ndarray) -> np.ndarray:
        """``P(examined)`` at 1-based positions: ``positions ** -eta``."""
        return np.asarray(positions, dtype=np.float64) ** -self.settings.position_bias_eta

    def attraction(self, affinity: np.ndarray) -> np.ndarray:
        """``P(attracted | examined)`` from a shopper's affinity scores."""
        s = self.settings
        return 1.0 / (
            1.0 + np.exp(-(s.attraction_scale * np.asarray(affinity) + s.attraction_offset))
        )

    def click_probability(self, positions: np.ndarray, affinity: np.ndarray) -> np.ndarray:
        """``P(click)`` of items with these affinities at these positions."""
        return self.examination(positions) * self.attraction(affinity)

    def sample(
        self, rng: np.random.Generator, positions: np.ndarray, affinity: np.ndarray
    ) -> Outcome:
        """Draw the shopper's actions on one page."""
        s = self.settings
        attr = self.attraction(affinity)
        n = len(attr)
        examined = rng.random(n) < self.examination(positions)
        click = examined & (rng.random(n) < attr)
        save = click & (rng.random(n) < np.minimum(1.0, 2 * s.p_save * attr))
        cart = click & (rng.random(n) < np.minimum(1.0, 2 * s.p_cart * attr))
        purchase = cart & (rng.random(n) < s.p_purchase)
        hide = examined & ~click & (rng.random(n) < s.p_hide * (1 - attr))
        return Outcome(click, save, cart, purchase, hide)
