"""Blend: the page-level steps after ranking; pure: ``Candidates`` in, ``Candidates`` out.

The utility (per-objective weights), diversity (MMR, greedy DPP) and slot rules, boosts
(attributes the query names, the item's own category), near-duplicate removal, evenly spaced
slots and interleaving (complements, exploration), the explore/exploit policies with exact
propensities (Thompson sampling, LinUCB) and the page they explore on, the seeded
exploration slice, and the page fill from fallback sources.
"""

from moodboard.blend.bandits import SlateChoice, ThompsonConfig, ThompsonSampling
from moodboard.blend.boosts import boost_matches
from moodboard.blend.dedup import dedup_images
from moodboard.blend.diversity import DPP, MMR, DiversityConfig
from moodboard.blend.explore import (
    CASCADE,
    EXPLORE,
    EXPLORED,
    explore_page,
    explore_slice,
    request_rng,
)
from moodboard.blend.fill import CATALOG_FALLBACK, concat, fill_page
from moodboard.blend.linucb import LinUCB, LinUCBConfig
from moodboard.blend.slot_rules import DEFERRED, SlotRule, SlotRules, SlotRulesConfig
from moodboard.blend.slots import interleave, slots
from moodboard.blend.utility import DEFAULT_WEIGHTS, Utility, UtilityConfig

__all__ = [
    "CASCADE",
    "CATALOG_FALLBACK",
    "DEFAULT_WEIGHTS",
    "DEFERRED",
    "DPP",
    "EXPLORE",
    "EXPLORED",
    "MMR",
    "DiversityConfig",
    "LinUCB",
    "LinUCBConfig",
    "SlateChoice",
    "SlotRule",
    "SlotRules",
    "SlotRulesConfig",
    "ThompsonConfig",
    "ThompsonSampling",
    "Utility",
    "UtilityConfig",
    "boost_matches",
    "concat",
    "dedup_images",
    "explore_page",
    "explore_slice",
    "fill_page",
    "interleave",
    "request_rng",
    "slots",
]
