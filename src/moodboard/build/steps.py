"""One build step per component: learn it from the workspace, save it, describe it.

A step is a small object with a ``name`` (its component, the key of its manifest entry) and a
``folder`` (from ``build.layout``). Calling it with the build's context and the version's
folder learns and saves the component and returns a ``Built``: its manifest entries and
how long it took. ``fit`` is the learning alone, on ``TrainingData``: evaluation fits the same
components through it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow.parquet as pq

from moodboard.build.complements import workspace_complements
from moodboard.build.context import BuildContext
from moodboard.build.layout import HAS_IMAGE_FILE, PRODUCTS_FILE, part, part_path
from moodboard.build.visual import VISUAL_VECTORS, build_head
from moodboard.ingest.workspace import product_from_row
from moodboard.pipelines import connect as connect_engine
from moodboard.pipelines import popularity_table
from moodboard.retrieve import CandidateSource, SourceConfig, TrainingData
from moodboard.retrieve.registry import source_class
from moodboard.surfaces.compose import ItemEngagement
from moodboard.surfaces.feed import UserHistories
from moodboard.understand.query import QueryUnderstanding

_log = logging.getLogger(__name__)

#: ``BuildContext.shared`` key of the labelled impressions (``pipelines.labels_table``).
SEARCH_LABELS = "search_labels"


@dataclass
class Built:
    """What a step made: manifest entries by component name, and seconds by step label."""

    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class BuildStep:
    """A build step: subclasses set ``name`` and implement ``_build``.

    Attributes
    ----------
    name
        The component it builds (a key of ``build.layout.LAYOUT``).
    """

    name: ClassVar[str]

    @property
    def folder(self) -> str:
        """Where it saves, relative to the version's folder (``build.layout``)."""
        return part(self.name).folder

    @property
    def label(self) -> str:
        """Its key in the manifest's ``timings_s``: its folder's first part."""
        return self.folder.split("/")[0]

    def message(self, ctx: BuildContext) -> str:
        """The progress line shown when the step starts."""
        return f"building {self.name}"

    def __call__(self, ctx: BuildContext, out: Path) -> Built:
        """Learn, save under ``out / self.folder`` and time the component."""
        t0 = time.perf_counter()
        entries = self._build(ctx, out)
        return Built(entries, {self.label: round(time.perf_counter() - t0, 2)})

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def _untrained(self, reason: str, rows: int = 0, **extra: Any) -> dict[str, dict[str, Any]]:
        """The manifest entry of a model the step did not train, and why (logged too)."""
        _log.info("%s not trained: %s", self.name, reason)
        entry = {"path": None, **extra, "trained": False, "reason": reason, "rows": rows}
        return {self.name: entry}


class SourceStep(BuildStep):
    """A step that fits one candidate source of the registry with its config.

    Parameters
    ----------
    config
        The source's config; default its class's ``Config()``.
    """

    def __init__(self, config: SourceConfig | None = None) -> None:
        self.config = config

    def fit(self, data: TrainingData, name: str | None = None) -> CandidateSource:
        """The source fitted on ``data``; ``name`` labels its candidates (default its kind)."""
        return source_class(self.name)(self.config, name=name).fit(data)

    def _saved(self, source: CandidateSource, out: Path) -> None:
        source.save(out / self.folder)


class LexicalStep(SourceStep):
    """``lexical/bm25``: the tantivy index of the catalog."""

    name = "lexical/bm25"

    def message(self, ctx: BuildContext) -> str:
        return f"indexing {len(ctx.catalog):,} products with tantivy"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        pq.write_table(ctx.products, out / PRODUCTS_FILE)
        lex = self.fit(TrainingData(catalog=ctx.catalog))
        self._saved(lex, out)
        return {self.name: {"path": self.folder, "config": lex.config.model_dump()}}


class DenseStep(SourceStep):
    """``dense/text``: the vector index of the products' text embeddings."""

    name = "dense/text"

    def message(self, ctx: BuildContext) -> str:
        return f"embedding {len(ctx.catalog):,} product texts"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        vecs, meta = ctx.text
        dense = self.fit(TrainingData(catalog=ctx.catalog, item_features={"text": vecs}))
        self._saved(dense, out)
        return {self.name: {"path": self.folder, **meta, "index": dense.index_type}}  # type: ignore[attr-defined]


class VisualStep(SourceStep):
    """``visual/image``: the vector index of the product images (none without images): the
    learned visual head (``build.visual``) applied to the backbone's features, and the head
    saved next to the index so serving embeds uploads the same way."""

    name = "visual/image"

    def message(self, ctx: BuildContext) -> str:
        return "embedding product images"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        built = build_head(ctx, ctx.settings.visual_head)
        if built is None:
            return {}
        head, backbone, has, head_entry = built
        vectors = backbone if head is None else head(backbone)
        ctx.shared[VISUAL_VECTORS] = (vectors, has)
        visual = self.fit(TrainingData(catalog=ctx.catalog, item_features={"image": vectors}))
        self._saved(visual, out)
        np.save(out / self.folder / HAS_IMAGE_FILE, has)
        if head is not None:
            head.save(out / self.folder)
        return {
            self.name: {
                "path": self.folder,
                "images": int(has.sum()),
                "dim": int(vectors.shape[1]),
                "visual_head": head_entry,
            }
        }


class TextImageStep(SourceStep):
    """``dense/text_image``: the text -> image head, trained on the catalog's (text, image)
    pairs after ``visual/image`` (whatever its vectors are); none without images."""

    name = "dense/text_image"

    def message(self, ctx: BuildContext) -> str:
        return "training the text-to-image head on the catalog's (text, image) pairs"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        found = part_path(out, {"components": ctx.built}, "visual/image")
        if found is None:
            return self._untrained("the catalog has no readable images")
        vectors = np.load(found / "vectors.npy", allow_pickle=False)
        features = {"text": ctx.text[0], "image": vectors}
        if self.config is None or self.config.titles:  # type: ignore[attr-defined]
            features["title"] = ctx.titles
        head = self.fit(TrainingData(catalog=ctx.catalog, item_features=features))
        self._saved(head, out)
        return {
            self.name: {
                "path": self.folder,
                "config": head.config.model_dump(mode="json"),
                **head.stats,
            }
        }


class PopularStep(SourceStep):
    """``popular/trending``: time-decayed, action-weighted engagement per item (bots' events
    left out)."""

    name = "popular/trending"

    def message(self, ctx: BuildContext) -> str:
        return "computing popularity from the event log"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        pop = source_class(self.name)(self.config)
        scores = np.zeros(len(ctx.catalog))
        if ctx.has_events:
            cfg = pop.config
            t = popularity_table(
                connect_engine(ctx.engine),
                ctx.ws.events.glob(),
                cfg.weights,
                cfg.half_life_days,
                exclude_users=ctx.bots.exclude(),
            )
            idx = ctx.catalog.ids.indices(t.column("item_id").to_pylist(), missing=-1)
            ok = idx >= 0
            scores[idx[ok]] = np.asarray(t.column("score").to_pylist(), dtype=np.float64)[ok]
        pop.fit(TrainingData(catalog=ctx.catalog, item_features={"popularity": scores}))
        self._saved(pop, out)
        return {
            self.name: {
                "path": self.folder,
                "config": pop.config.model_dump(),
                "items_with_engagement": int((pop.scores > 0).sum()),  # type: ignore[attr-defined]
            }
        }


class ComplementsStep(BuildStep):
    """``related/complements``: complementary categories from co-engagement."""

    name, label = "related/complements", "complements"  # type: ignore[assignment]

    def message(self, ctx: BuildContext) -> str:
        return "learning complementary categories from co-engagement"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        cfg = part(self.name).config(ctx.settings)  # type: ignore[misc]
        comp = workspace_complements(ctx.ws, ctx.catalog, cfg, ctx.engine, ctx.bots)  # type: ignore[arg-type]
        comp.save(out / self.folder)
        return {
            self.name: {
                "path": self.folder,
                "groups": comp.groups,
                "categories": len(comp.pairs),
                "pairs": sum(len(v) for v in comp.pairs.values()),
                "config": comp.config.model_dump(mode="json"),
            }
        }


class HistoriesStep(BuildStep):
    """``feed/histories``: each user's recent interactions, read by the feed."""

    name, label = "feed/histories", "feed_histories"  # type: ignore[assignment]

    def message(self, ctx: BuildContext) -> str:
        return "collecting users' recent interactions"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        users, seqs, weights = ctx.sequences
        UserHistories(
            dict(zip(users, seqs, strict=True)), dict(zip(users, weights, strict=True))
        ).save(out / self.folder)
        return {self.name: {"path": self.folder, "users": len(users)}}


class EngagementStep(BuildStep):
    """``feed/engagement``: each item's impressions, clicks and engagements (clicks, saves,
    carts, purchases) in the event log, bots left out: the feed's explore policy learns from
    them which items are fresh and how they did (``surfaces.compose``)."""

    name, label = "feed/engagement", "feed_engagement"  # type: ignore[assignment]

    def message(self, ctx: BuildContext) -> str:
        return "counting each item's impressions and engagements"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        counts = ItemEngagement()
        if ctx.has_events:
            t = ctx.events()
            t = t.filter(t.item_id.notnull())
            kinds = ("click", "save", "add_to_cart", "purchase")
            got = t.group_by("item_id").aggregate(
                impressions=(t.type == "impression").sum(),
                clicks=(t.type == "click").sum(),
                engagements=t.type.isin(kinds).sum(),
            )
            a = got.to_pyarrow()
            cols = [a.column(n).to_numpy(zero_copy_only=False) for n in ItemEngagement.COLUMNS]
            counts = ItemEngagement(a.column("item_id").to_pylist(), *cols)
        counts.save(out / self.folder)
        return {self.name: {"path": self.folder, "items": len(counts)}}


class UnderstandStep(BuildStep):
    """``understand``: query understanding (spelling, lexicons, intent) from the catalog and
    the logged searches."""

    name = "understand"

    def message(self, ctx: BuildContext) -> str:
        return "fitting query understanding"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        queries = ctx.search_queries()
        products = [product_from_row(r) for r in ctx.products.to_pylist()]
        qu = QueryUnderstanding(ctx.settings.understand).fit(products, queries=queries)
        qu.save(out / self.folder)
        return {self.name: {"path": self.folder, "queries": len(queries)}}
