"""Simulated shoppers over a real catalog: known tastes, a position-biased click model."""

from moodboard.simulate.clickmodel import Outcome, PositionBiasedClickModel
from moodboard.simulate.run import (
    PageSource,
    RandomizedBrowser,
    ShownPage,
    SimulationResult,
    Simulator,
    load_tastes,
    run_simulation,
)
from moodboard.simulate.world import TASTE_ATTRIBUTES, Shopper, World

__all__ = [
    "TASTE_ATTRIBUTES",
    "Outcome",
    "PageSource",
    "PositionBiasedClickModel",
    "RandomizedBrowser",
    "Shopper",
    "ShownPage",
    "SimulationResult",
    "Simulator",
    "World",
    "load_tastes",
    "run_simulation",
]
