"""The artifact registry: loads the live version named by ``CURRENT`` into an ``Engine``.

It loads what the version's manifest lists, each component from the ``path`` the manifest
gives it (``build.layout``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pyarrow.parquet as pq

from moodboard.build.layout import (
    HAS_IMAGE_FILE,
    MANIFEST_FILE,
    PRODUCTS_FILE,
    listed_sources,
    part_path,
    read_manifest,
)
from moodboard.config import FuseSettings, Settings, load_settings
from moodboard.data import Catalog
from moodboard.data import columns as C
from moodboard.errors import ConfigError, InputError, NotFoundError
from moodboard.ingest import Workspace
from moodboard.rank import (
    FEATURES,
    LAMBDAMART,
    LTV,
    MULTIHEAD,
    ItemTexts,
    LambdaMARTRanker,
    LtvModel,
    LtvScorer,
    MultiHeadModel,
    SearchModel,
    search_features,
)
from moodboard.rank.ltv import category_codes
from moodboard.rank.multihead_serving import load_serving
from moodboard.retrieve import CandidateSource
from moodboard.retrieve.registry import attach_all, load_source
from moodboard.serve.image_space import SharedImageEncoder, load_visual_head
from moodboard.surfaces import Complements, Surface, build_surface
from moodboard.surfaces.autocomplete import Autocomplete
from moodboard.surfaces.compose import ENGAGEMENT, ItemEngagement
from moodboard.surfaces.feed import UserHistories
from moodboard.surfaces.query_graph import QueryGraph
from moodboard.surfaces.recent import BOTS, EVENTS_UNTIL
from moodboard.surfaces.related_searches import QUERY_GRAPH
from moodboard.surfaces.search_modules import INTENT
from moodboard.surfaces.visual import CATEGORY, DETECT
from moodboard.understand.categorize import CategoryClassifier
from moodboard.understand.detect import ObjectDetector, look_at
from moodboard.understand.image import ImageEncoder
from moodboard.understand.query import QueryUnderstanding
from moodboard.understand.query_vectors import QueryVectors
from moodboard.understand.text import TextEncoder

_log = logging.getLogger(__name__)


@dataclass
class Engine:
    """Everything one artifact version serves."""

    version: str
    path: Path
    manifest: dict[str, Any]
    catalog: Catalog
    sources: dict[str, CandidateSource]
    understand: QueryUnderstanding
    text_encoder: TextEncoder
    surfaces: dict[str, Surface]
    settings: Settings = field(default_factory=Settings)
    images: SharedImageEncoder = field(default_factory=SharedImageEncoder, repr=False)
    histories: UserHistories = field(default_factory=UserHistories, repr=False)
    #: The search box's completions (None: a version built before autocomplete existed).
    autocomplete: Autocomplete | None = field(default=None, repr=False)

    @property
    def search(self) -> Surface:
        """The search surface."""
        return self.surfaces["search"]

    @property
    def related(self) -> Surface:
        """The related-products surface."""
        return self.surfaces["related"]

    @property
    def visual(self) -> Surface:
        """The visual search surface."""
        return self.surfaces["visual"]

    @property
    def board(self) -> Surface:
        """The board ideas surface."""
        return self.surfaces["board"]

    @property
    def popular(self) -> Surface:
        """The popular surface."""
        return self.surfaces["popular"]

    @property
    def feed(self) -> Surface:
        """The home feed surface."""
        return self.surfaces["feed"]

    @property
    def recommenders(self) -> dict[str, CandidateSource]:
        """The loaded sources that rank the whole catalog for a history (the feed's)."""
        return {n: s for n, s in self.sources.items() if s.full_ranking}

    def history(self, user_id: str | None) -> np.ndarray:
        """The user's recent interactions as of the build (item indices, oldest first);
        empty for a user the build did not see."""
        return self.histories(user_id)

    @property
    def image_encoder(self) -> ImageEncoder:
        """The engine's one image encoder, created on first use."""
        return self.images.get()

    @classmethod
    def load(
        cls,
        ws: Workspace,
        version: str | None = None,
        settings: Settings | None = None,
        resources: Mapping[str, Any] | None = None,
    ) -> Engine:
        """Load a version (default: the live one) with its surfaces declared in ``settings``.

        Parameters
        ----------
        ws
            The workspace.
        version
            An artifact version; None: the live one (``CURRENT``).
        settings
            Whose ``surfaces`` section declares each surface's chain; default
            ``load_settings()`` (``moodboard.toml`` and ``MOODBOARD_*``).
        resources
            What the server adds to the chains' resources, e.g. ``recent`` (the
            ``RecentActions`` accepted since the build).

        Raises
        ------
        NotFoundError
            If nothing was built yet or the version does not exist.
        InputError
            If ``version`` is not a version name in ``artifacts/``, or the version's
            complements file is unreadable.
        """
        settings = settings or load_settings()
        surfaces = settings.surfaces
        version = version or ws.current_artifact()
        if version is None:
            raise NotFoundError(f"No artifact is live in {ws.root}: run `moodboard build`.")
        path = ws.version_path(version)
        if not (path / MANIFEST_FILE).is_file():
            raise NotFoundError(f"Artifact {version!r} does not exist in {ws.artifacts_dir}.")
        manifest = read_manifest(path)
        catalog = Catalog.from_table(pq.read_table(path / PRODUCTS_FILE))
        sources = load_sources(path, catalog, manifest)
        understand = QueryUnderstanding.load(_required(path, manifest, "understand"))
        enc = TextEncoder()
        found = part_path(path, manifest, "related/complements")
        complements = Complements.load(found) if found else Complements()
        feed_config = surfaces.feed
        found = part_path(path, manifest, "feed/fusion")
        if feed_config.tune_fusion and found:
            tuned = json.loads(found.read_text())
            fuse = FuseSettings(method="rrf", k=tuned["k"], weights=tuned["weights"])
            feed_config = feed_config.model_copy(update={"fuse": fuse})
        found = part_path(path, manifest, "feed/histories")
        histories = UserHistories.load(found) if found else UserHistories()
        found = part_path(path, manifest, "feed/engagement")
        engagement = ItemEngagement.load(found) if found else None
        graph = part_path(path, manifest, QUERY_GRAPH)
        found = part_path(path, manifest, "surfaces/autocomplete")
        autocomplete = Autocomplete.load(found, settings.autocomplete) if found else None
        images = SharedImageEncoder(
            settings.serve.max_image_pixels, load_visual_head(path, manifest)
        )
        found = part_path(path, manifest, "visual/category")
        visual = settings.surfaces.visual
        detect = ObjectDetector(visual.detect)
        look = functools.partial(
            look_at, detector=detect, embed=images.embed_images, max_pixels=images.max_pixels
        )
        resources = {
            "understand": understand,
            INTENT: understand.intent_distribution,
            "encode": QueryVectors(enc),
            "complements": complements,
            "encode_upload": images.encode_upload,
            DETECT: look if visual.detect.enabled else None,
            CATEGORY: CategoryClassifier.load(found, visual.category) if found else None,
            "histories": histories,
            ENGAGEMENT: engagement,
            QUERY_GRAPH: QueryGraph.load(graph) if graph else None,
            **(resources or {}),
        }
        resources |= realtime_resources(path, manifest)
        models = {
            LAMBDAMART: load_search_model(path, manifest, catalog, sources),
            MULTIHEAD: load_multihead_model(path, manifest, catalog),
        }
        resources |= {name: model for name, model in models.items() if model is not None}
        declared = surfaces.declared() | {"feed": feed_config}
        for name, config in declared.items():
            if config.ranker in models and models[config.ranker] is None:
                why = manifest["components"].get(config.ranker, {}).get("reason", "not built")
                _log.info("%s keeps rank/noop: no trained %s (%s)", name, config.ranker, why)
                declared[name] = config.model_copy(update={"ranker": "rank/noop"})
        chains = {
            name: build_surface(name, config, catalog, sources, settings.seed, resources)
            for name, config in declared.items()
        }
        _log.info("loaded artifact %s", version)
        return cls(
            version,
            path,
            manifest,
            catalog,
            sources,
            understand,
            enc,
            chains,
            settings=settings,
            images=images,
            histories=histories,
            autocomplete=autocomplete,
        )

    def has_images(self) -> np.ndarray:
        """Which items have an image embedding."""
        found = part_path(self.path, self.manifest, "visual/image")
        if found is None or not (found / HAS_IMAGE_FILE).is_file():
            return np.zeros(len(self.catalog), dtype=bool)
        return np.load(found / HAS_IMAGE_FILE)


def load_search_model(
    path: Path, manifest: dict[str, Any], catalog: Catalog, sources: dict[str, CandidateSource]
) -> SearchModel | None:
    """The search ranker the version holds, with its serving features, or None if it has none.

    Raises
    ------
    InputError
        If the saved ranker is unreadable or was trained on other features.
    """
    found = part_path(path, manifest, LAMBDAMART)
    if found is None:
        return None
    try:
        ranker = LambdaMARTRanker.load(found)
    except (OSError, ValueError, KeyError, lightgbm.basic.LightGBMError) as exc:
        raise InputError(f"{found} is not a readable ranker ({exc}): rebuild.") from exc
    if ranker.feature_names != FEATURES:
        raise InputError(
            f"The ranker in {found} was trained on other features than this moodboard "
            "computes: rebuild with `moodboard build`."
        )
    features = search_features(catalog, sources, ItemTexts.from_catalog(catalog))
    return SearchModel(ranker, features, ranker.config.depth)


def load_multihead_model(
    path: Path, manifest: dict[str, Any], catalog: Catalog
) -> MultiHeadModel | None:
    """The multi-head ranker the version holds, with its serving inputs, or None if it has none.

    Raises
    ------
    InputError
        If the saved ranker is unreadable or was trained with other item vectors.
    """
    found = part_path(path, manifest, MULTIHEAD)
    if found is None:
        return None
    dense = part_path(path, manifest, "dense/text")
    ltv = part_path(path, manifest, LTV)  # the value model writes ``ltv`` in the same stage
    try:
        content = np.load(dense / "vectors.npy", allow_pickle=False) if dense else None
        model = load_serving(found, catalog, content)
        if ltv is not None:
            scorer = LtvScorer(LtvModel.load(ltv), category_codes(catalog.category))
            model = dataclasses.replace(model, ltv=scorer)
        return model
    except (OSError, ValueError, KeyError, RuntimeError, ConfigError) as exc:
        raise InputError(f"{found} is not a readable multi-head ranker ({exc}): rebuild.") from exc


def realtime_resources(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """What ``surfaces.recent`` reads beside the server's buffer: the newest event time the
    version read (``events_until``) and the accounts it flagged as bots (``bots``).

    Raises
    ------
    InputError
        If the version's bots file is listed but unreadable.
    """
    until = manifest.get("data", {}).get("events_until")
    out: dict[str, Any] = {EVENTS_UNTIL: datetime.fromisoformat(until) if until else None}
    listed = manifest.get("bots", {}).get("path")
    bots_file = path / listed if listed else None
    if bots_file is not None and bots_file.is_file():
        try:
            out[BOTS] = frozenset(pq.read_table(bots_file, columns=[C.USER_ID])[0].to_pylist())
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{bots_file} is not a readable bots file ({exc}): rebuild.") from exc
    return out


def load_sources(
    path: Path, catalog: Catalog, manifest: dict[str, Any]
) -> dict[str, CandidateSource]:
    """Every candidate source the manifest of a version lists, by its name, each loaded from
    the ``path`` its entry names.

    Raises
    ------
    InputError
        If a listed source's files are missing or unreadable, or its catalog size differs, or
        one searches another the version lacks.
    """
    sources = {
        name: load_source(_required(path, manifest, name), catalog)
        for name in listed_sources(manifest)
    }
    try:
        attach_all(sources)
    except ConfigError as exc:
        raise InputError(f"The sources of {path} do not fit together: {exc}") from exc
    return sources


def _required(path: Path, manifest: dict[str, Any], name: str) -> Path:
    """Where the manifest lists ``name``.

    Raises
    ------
    InputError
        If the manifest does not list it.
    """
    found = part_path(path, manifest, name)
    if found is None:
        raise InputError(
            f"The manifest of {path} does not list {name!r}: rebuild with `moodboard build`."
        )
    return found
