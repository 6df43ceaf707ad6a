"""Simulated shoppers over a real catalog: known tastes, a position-biased click model, and
optional bot accounts (``bots``)."""

from moodboard.simulate.bots import BotAccount, load_bots
from moodboard.simulate.clickmodel import Outcome, PositionBiasedClickModel
from moodboard.simulate.run import SimulationResult, Simulator, load_tastes, run_simulation
from moodboard.simulate.sessions import PageAsk, PageSource, RandomizedBrowser, ShownPage
from moodboard.simulate.world import TASTE_ATTRIBUTES, Shopper, World

__all__ = [
    "TASTE_ATTRIBUTES",
    "BotAccount",
    "Outcome",
    "PageAsk",
    "PageSource",
    "PositionBiasedClickModel",
    "RandomizedBrowser",
    "Shopper",
    "ShownPage",
    "SimulationResult",
    "Simulator",
    "World",
    "load_bots",
    "load_tastes",
    "run_simulation",
]
