"""The layout of an artifact version: which component lives in which folder, with which config.

This is the one place artifact folder names are written. The build saves each component under
its ``Part.folder`` and lists it in ``manifest.json`` (``components.<name>.path``); the server's
registry reads the manifest back and opens each listed part from the ``path`` it names
(``part_path``, ``listed_sources``), so a version loads what it holds, whatever this module
says today.

Layout of a version::

    products.parquet      the catalog snapshot the indexes were built on
    lexical/              tantivy index (lexical/bm25)
    dense_text/           FAISS index + vectors of text embeddings (dense/text)
    visual_image/         FAISS index + vectors of image embeddings (visual/image), if images
    dense_text_image/     the text -> image head (.npy) of dense/text_image; searches visual_image
    visual_category/      the image category classifier (weights.npy, bias.npy, classifier.json)
    popular/              time-decayed popularity (popular/trending)
    two_tower/ sequence/ graph_walks/ user_interests/  the feed's recommenders (folder: the
                          registry name with "/" as "_"); every source folder holds a source.json
    feed/fusion.json      the feed's fusion weights, tuned on held-out interactions
    feed/histories.parquet  each user's recent interactions, for the feed
    feed/engagement.parquet  each item's impressions, clicks and engagements (the feed's
                          explore policy, blend/compose)
    related/complements.json  complementary categories from co-engagement (related products)
    understand/           query understanding (spelling, lexicons, intent)
    autocomplete/         completions: candidate texts and statistics (.npy), the prefix
                          index (.npy), the ranker (LightGBM model.txt) and autocomplete.json
    rank_lambdamart/      the search ranker (LightGBM model.txt + ranker.json), if trained
    rank_multihead/       the multi-head ranker (model.pt state dict + ranker.json) with the
                          actions and definitions of its serving features, if trained
    rank_ltv/             the value model (LightGBM model.txt + ltv.json), if trained
    refinements/          the query-item graph of related searches (queries.json + CSR .npy)
    bots.parquet          the accounts flagged as bots, each with its rule
    manifest.json         what, from which data, with which parameters, and timings
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from moodboard.config import Settings
from moodboard.errors import InputError
from moodboard.rank import LambdaMARTRanker, LtvModel, MultiHeadRanker
from moodboard.retrieve import CandidateSource
from moodboard.retrieve.registry import source_class
from moodboard.surfaces.autocomplete import Autocomplete
from moodboard.surfaces.complements import Complements
from moodboard.surfaces.compose import ItemEngagement
from moodboard.surfaces.feed import UserHistories
from moodboard.surfaces.query_graph import QueryGraph
from moodboard.understand.categorize import CategoryClassifier
from moodboard.understand.query import QueryUnderstanding

#: The files every version holds, beside its components.
MANIFEST_FILE = "manifest.json"
PRODUCTS_FILE = "products.parquet"
#: The accounts the build flagged as bots (``user_id``, ``rule``).
BOTS_FILE = "bots.parquet"
#: Which items have an image embedding, inside the visual source's folder.
HAS_IMAGE_FILE = "has_image.npy"
#: The prefix of a version being built (a hidden folder in ``artifacts/``).
BUILDING_PREFIX = ".building-"


@dataclass(frozen=True)
class Part:
    """One component of a version.

    Attributes
    ----------
    name
        Its name: the key of its manifest entry (a registry name for a candidate source).
    folder
        Where the build saves it, relative to the version's folder.
    opens
        The class that loads it (a ``CandidateSource`` subclass, ``Complements``,
        ``UserHistories``, ``QueryUnderstanding``), or None for a JSON file read as is.
    config
        Its config in the settings.
    """

    name: str
    folder: str
    opens: type | None
    config: Callable[[Settings], BaseModel] | None = None

    @property
    def is_source(self) -> bool:
        """Whether the part is a candidate source (loaded by the source registry)."""
        return isinstance(self.opens, type) and issubclass(self.opens, CandidateSource)


def _source(name: str, folder: str | None, config: Callable[[Settings], BaseModel]) -> Part:
    """A candidate source's part; its folder defaults to its name with "/" as "_"."""
    return Part(name, folder or name.replace("/", "_"), source_class(name), config)


#: The feed's recommenders, in the order the build trains them.
RECOMMENDERS = ("two_tower", "sequence", "graph/walks", "user_interests", "ease")

_PARTS = (
    _source("lexical/bm25", "lexical", lambda s: s.retrieve.lexical),
    _source("dense/text", "dense_text", lambda s: s.retrieve.dense),
    _source("visual/image", "visual_image", lambda s: s.retrieve.visual),
    _source("dense/text_image", "dense_text_image", lambda s: s.retrieve.text_image),
    Part(
        "visual/category",
        "visual_category",
        CategoryClassifier,
        lambda s: s.surfaces.visual.category,
    ),
    _source("popular/trending", "popular", lambda s: s.retrieve.popular),
    Part(
        "related/complements",
        "related/complements.json",
        Complements,
        lambda s: s.surfaces.related.complements,
    ),
    Part("feed/histories", "feed/histories.parquet", UserHistories),
    Part("feed/engagement", "feed/engagement.parquet", ItemEngagement),
    _source("two_tower", None, lambda s: s.surfaces.feed.two_tower),
    _source("sequence", None, lambda s: s.surfaces.feed.sequence),
    _source("graph/walks", None, lambda s: s.surfaces.feed.walks),
    _source("user_interests", None, lambda s: s.surfaces.feed.interests),
    _source("ease", None, lambda s: s.surfaces.feed.ease),
    Part("feed/fusion", "feed/fusion.json", None, lambda s: s.surfaces.feed.fuse),
    Part("understand", "understand", QueryUnderstanding, lambda s: s.understand),
    Part("surfaces/autocomplete", "autocomplete", Autocomplete, lambda s: s.autocomplete),
    Part("rank/lambdamart", "rank_lambdamart", LambdaMARTRanker, lambda s: s.rank.lambdamart),
    Part("rank/multihead", "rank_multihead", MultiHeadRanker, lambda s: s.rank.multihead),
    Part("rank/ltv", "rank_ltv", LtvModel, lambda s: s.rank.ltv),
    Part("refinements/graph", "refinements", QueryGraph, lambda s: s.surfaces.search.refinements),
)
#: Component name -> its part.
LAYOUT: dict[str, Part] = {p.name: p for p in _PARTS}


def part(name: str) -> Part:
    """The part named ``name``.

    Raises
    ------
    InputError
        If no part has that name.
    """
    try:
        return LAYOUT[name]
    except KeyError:
        raise InputError(
            f"Unknown artifact component {name!r}: choose among {', '.join(LAYOUT)}."
        ) from None


def read_manifest(version: Path) -> dict[str, Any]:
    """The ``manifest.json`` of a version folder.

    Raises
    ------
    InputError
        If it is not readable JSON with a ``components`` mapping.
    """
    try:
        manifest = json.loads((Path(version) / MANIFEST_FILE).read_text())
        if not isinstance(manifest.get("components"), dict):
            raise ValueError("no 'components' mapping")
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{Path(version) / MANIFEST_FILE} is not a readable manifest ({exc}): "
            "rebuild with `moodboard build`."
        ) from exc
    return manifest


def part_path(version: Path, manifest: Mapping[str, Any], name: str) -> Path | None:
    """Where the manifest says component ``name`` is, or None if the version lacks it (or
    lists it without a path: e.g. a ranker that was not trained).

    Raises
    ------
    InputError
        If the manifest lists it at a path outside the version or missing on disk.
    """
    entry = manifest["components"].get(name)
    if entry is None or entry.get("path") is None:
        return None
    root = Path(version).resolve()
    path = (root / entry["path"]).resolve()
    if not path.is_relative_to(root) or not path.exists():
        raise InputError(
            f"The manifest of {version} lists {name!r} at {entry['path']!r}, which is not in "
            "the version: rebuild with `moodboard build`."
        )
    return path


def listed_sources(manifest: Mapping[str, Any]) -> list[str]:
    """The candidate sources a manifest lists, in its order (unknown names skipped: a
    component of a newer moodboard; so are sources the build did not train, whose entry has no
    ``path`` and says why, e.g. ``dense/text_image`` on a catalog without images)."""
    components = manifest["components"]
    return [
        n
        for n in components
        if n in LAYOUT and LAYOUT[n].is_source and components[n].get("path") is not None
    ]
