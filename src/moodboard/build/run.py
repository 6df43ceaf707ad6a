"""``moodboard build``: a new artifact version from the workspace, made live only if whole.

The version is built in a hidden folder (``build.artifact.NewVersion``), one step per
component (``steps``), fsynced, renamed into place, and only then named by ``CURRENT``; a failed
build leaves the live version untouched. The newest ``build.keep_versions`` versions are kept,
older ones deleted. What goes where is ``build.layout``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq

from moodboard import __version__
from moodboard.build.artifact import NewVersion
from moodboard.build.autocomplete import AutocompleteStep
from moodboard.build.context import BuildContext
from moodboard.build.layout import BOTS_FILE, RECOMMENDERS, part
from moodboard.build.ltv import LtvStep
from moodboard.build.multihead import MultiHeadStep
from moodboard.build.ranker import SearchRankerStep
from moodboard.build.recommenders import FusionStep, RecommenderStep
from moodboard.build.refinements import QueryGraphStep
from moodboard.build.steps import (
    BuildStep,
    ComplementsStep,
    DenseStep,
    EngagementStep,
    HistoriesStep,
    LexicalStep,
    PopularStep,
    TextImageStep,
    UnderstandStep,
    VisualStep,
)
from moodboard.build.visual_category import VisualCategoryStep
from moodboard.config import Settings, load_settings
from moodboard.errors import InputError
from moodboard.ingest import Workspace

_log = logging.getLogger(__name__)
Say = Callable[[str], None]


def build_steps(settings: Settings) -> list[BuildStep]:
    """The steps of a build, in order, each with its component's config from ``settings``."""

    def config(name: str) -> Any:
        return part(name).config(settings)  # type: ignore[misc]

    feed = settings.surfaces.feed
    return [
        LexicalStep(config("lexical/bm25")),
        DenseStep(config("dense/text")),
        VisualStep(config("visual/image")),
        TextImageStep(config("dense/text_image")),
        VisualCategoryStep(config("visual/category")),
        PopularStep(config("popular/trending")),
        ComplementsStep(),
        HistoriesStep(),
        EngagementStep(),
        *(RecommenderStep(n, config(n), feed.per_source, n in feed.refit) for n in RECOMMENDERS),
        FusionStep(),
        UnderstandStep(),
        AutocompleteStep(settings.autocomplete),
        SearchRankerStep(settings.rank.lambdamart),
        MultiHeadStep(settings.rank.multihead),
        LtvStep(settings.rank.ltv),
        QueryGraphStep(),
    ]


def build(
    ws: Workspace,
    say: Say | None = None,
    settings: Settings | None = None,
    engine: str = "duckdb",
) -> dict[str, Any]:
    """Build every component from the workspace and make the new version live.

    Parameters
    ----------
    ws
        The workspace.
    say
        Receives a progress message per step (default: the log).
    settings
        The components' configs; default ``load_settings()``.
    engine
        Where the engagement pipelines run: ``duckdb`` (embedded, the default) or ``spark``
        (the active Spark session, or a local one).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    InputError
        If the workspace has no products.
    """
    say = say or (lambda m: _log.info(m))
    settings = settings or load_settings()
    products = ws.products_table()
    if products.num_rows == 0:
        raise InputError(f"The workspace {ws.root} has no products: ingest a catalog first.")
    ctx = BuildContext(ws, products, settings, engine)
    timings: dict[str, float] = {}
    components: dict[str, Any] = {}
    with NewVersion(ws) as new:
        for step in build_steps(settings):
            say(step.message(ctx))
            built = step(ctx, new.folder)
            components |= built.components
            ctx.built |= built.components
            timings |= built.timings
        pq.write_table(ctx.bots.flagged, new.folder / BOTS_FILE)
        status = ws.status()
        manifest = {
            "version": new.version,
            "moodboard": __version__,
            "created_at": datetime.now(UTC).isoformat(),
            "data": {
                "products": status["products"],
                "events": status["events"],
                "events_total": status["events_total"],
                "users": status["users"],
                "events_until": ctx.events_until,
            },
            "components": components,
            "bots": ctx.bots.as_dict() | {"path": BOTS_FILE},
            "timings_s": timings,
        }
        new.publish(manifest, settings.build.keep_versions)
    say(f"built {new.version}")
    return manifest
