"""Surfaces: each a declared chain (prepare -> sources -> fuse -> rank -> blend -> fallback)
run by one runner; a surface module holds its prepare step (and blend step) only.

Importing this package registers the built-in steps (``prepare/search``, ``blend/boost``, ...).
"""

from moodboard.config import (
    BoardConfig,
    PopularChainConfig,
    RelatedConfig,
    SearchConfig,
    SurfaceConfig,
    VisualConfig,
)
from moodboard.surfaces import board, compose, feed, popular, related, search, visual
from moodboard.surfaces.complements import Complement, Complements
from moodboard.surfaces.runner import (
    Prepared,
    Probe,
    Retrieved,
    Surface,
    SurfaceEnv,
    SurfaceResult,
    to_page,
)
from moodboard.surfaces.steps import (
    BLENDS,
    PREPARES,
    build_surface,
    register_blend,
    register_prepare,
)

__all__ = [
    "BLENDS",
    "PREPARES",
    "BoardConfig",
    "Complement",
    "Complements",
    "PopularChainConfig",
    "Prepared",
    "Probe",
    "RelatedConfig",
    "Retrieved",
    "SearchConfig",
    "Surface",
    "SurfaceConfig",
    "SurfaceEnv",
    "SurfaceResult",
    "VisualConfig",
    "board",
    "build_surface",
    "compose",
    "feed",
    "popular",
    "register_blend",
    "register_prepare",
    "related",
    "search",
    "to_page",
    "visual",
]
