"""Blend: the page-level steps after ranking; pure: ``Candidates`` in, ``Candidates`` out.

Boosts (attributes the query names, the item's own category), near-duplicate removal,
evenly spaced slots and interleaving (complements, exploration), the seeded exploration
slice, and the page fill from fallback sources.
"""

from moodboard.blend.boosts import boost_matches
from moodboard.blend.dedup import dedup_images
from moodboard.blend.explore import EXPLORE, explore_slice, request_rng
from moodboard.blend.fill import CATALOG_FALLBACK, concat, fill_page
from moodboard.blend.slots import interleave, slots

__all__ = [
    "CATALOG_FALLBACK",
    "EXPLORE",
    "boost_matches",
    "concat",
    "dedup_images",
    "explore_slice",
    "fill_page",
    "interleave",
    "request_rng",
    "slots",
]
