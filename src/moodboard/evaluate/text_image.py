"""Text to image: does a product's title find its image when the head never saw the product?

Protocol (``moodboard evaluate text-image``): a seeded ``held_out`` share of the live
version's products with an image (split by product) is left out of the head's training: the
``dense/text_image`` head is fitted by the build's own step (``TextImageStep.fit``) on the
other products' (text, image) pairs, then linked to the version's ``visual/image`` index, which
holds every product's image. Each held-out product's title is a query, understood and embedded
as ``/search`` does (``understand`` and ``encode`` resources), and each source answers with 10
products of the whole catalog:

- ``dense/text_image``: the title through the head, searched over every image;
- ``dense/text``: today's text-only source over every product's text, the held-out product's
  own text included (its title is in it: an easy reference for the item-level figure);
- ``dense/text, image-only``: the same source when the held-out products have no text in the
  index (new products known by their photo only: found by ``dense/text_image``, never by text).

Metrics: ``recall@10``, the share of titles whose own product is among the 10; ``type@10`` and
``type_colour@10``, the share of the 10 with the title's product's article type (and colour):
relevance at the attribute level, which every method can reach.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import InputError
from moodboard.retrieve import CandidateSource, SourceQuery, TrainingData
from moodboard.retrieve.text_image import TextImageConfig, TextImageSource
from moodboard.surfaces.search import search_text
from moodboard.understand.cache import EmbeddingCache

_log = logging.getLogger(__name__)

__all__ = ["TextImageEvalConfig", "TextImageReport", "text_image_recall"]


class TextImageEvalConfig(BaseModel):
    """The held-out share, its cap, the cut-off and the seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    held_out: float = Field(default=0.1, gt=0, lt=1)
    max_queries: int = Field(default=1000, ge=1, le=100_000)
    k: int = Field(default=10, ge=1, le=100)
    seed: int = 0


@dataclass
class TextImageReport:
    """Per method: ``recall@k``, ``type@k`` and ``type_colour@k``; the head's fit stats."""

    queries: int
    k: int
    methods: dict[str, dict[str, float]] = field(default_factory=dict)
    head: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "queries": self.queries,
            "k": self.k,
            "methods": self.methods,
            "head": self.head,
            "params": self.params,
        }


def _split(has: np.ndarray, cfg: TextImageEvalConfig) -> np.ndarray:
    """The held-out products: a seeded share of those with an image, at most ``max_queries``."""
    pool = np.flatnonzero(has)
    n = min(cfg.max_queries, round(len(pool) * cfg.held_out))
    if n < 1 or len(pool) - n < 2:
        raise InputError(
            f"Text-to-image evaluation needs products with images on both sides of the split. "
            f"Got {len(pool)} products with an image instead."
        )
    return np.sort(np.random.default_rng(cfg.seed).choice(pool, size=n, replace=False))


def text_image_recall(
    engine: Any,
    cfg: TextImageEvalConfig | None = None,
    progress: Callable[[str], None] | None = None,
    cache: EmbeddingCache | None = None,
    head_config: TextImageConfig | None = None,
) -> TextImageReport:
    """Recall@k of held-out titles -> their images, and attribute precision, per method.

    Parameters
    ----------
    engine
        A loaded ``serve.registry.Engine`` with ``dense/text`` and ``visual/image`` sources.
    cfg
        The split and cut-off.
    progress
        Receives a message per phase.
    cache
        Where the titles' embeddings are kept (the workspace's embedding cache).
    head_config
        The head's training; default the engine's ``[retrieve.text_image]``.

    Raises
    ------
    InputError
        If the version lacks either source or has too few images.
    """
    from moodboard.build.steps import TextImageStep

    cfg = cfg or TextImageEvalConfig()
    say = progress or (lambda m: _log.info(m))
    dense, visual = engine.sources.get("dense/text"), engine.sources.get("visual/image")
    if dense is None or visual is None:
        raise InputError(
            "Text-to-image evaluation needs a version with dense/text and visual/image: "
            "build a workspace whose products have images."
        )
    catalog = engine.catalog
    text, image = dense.item_vectors(), visual.item_vectors()
    has = np.any(image != 0, axis=1)
    held = _split(has, cfg)
    say(f"training the head without {len(held):,} held-out products")
    train_image = image.copy()
    train_image[held] = 0.0  # no pair: the head never sees these products
    config = head_config or engine.settings.retrieve.text_image
    step = TextImageStep(config)
    features = {"text": text, "image": train_image}
    if config.titles:  # the head's second text view, as the build gives it
        features["title"] = engine.text_encoder.encode(
            [t or "" for t in catalog.title], cache=cache
        )
    head = step.fit(TrainingData(catalog=catalog, item_features=features))
    assert isinstance(head, TextImageSource)
    head.attach(engine.sources)  # search the version's own image index
    say(f"embedding {len(held):,} titles")
    understand, encode = (
        engine.search.env.resources["understand"],
        engine.search.env.resources["encode"],
    )
    titles = [catalog.title[i] or "" for i in held]
    vectors = encode([search_text(understand(t), t) for t in titles])
    image_only = np.ones(len(catalog), dtype=bool)
    image_only[held] = False
    methods: dict[str, tuple[CandidateSource, np.ndarray | None]] = {
        "dense/text_image": (head, None),
        "dense/text": (dense, None),
        "dense/text, image-only": (dense, image_only),
    }
    types = np.asarray(catalog.attribute("articleType"), dtype=object)
    colours = np.asarray(catalog.attribute("baseColour"), dtype=object)
    report = TextImageReport(len(held), cfg.k, head=dict(head.stats))
    for name, (source, allowed) in methods.items():
        t0 = time.perf_counter()
        hits = np.zeros(len(held))
        same_type = np.zeros(len(held))
        same_both = np.zeros(len(held))
        for j, (item, vec) in enumerate(zip(held, vectors, strict=True)):
            if allowed is None:
                items = source(SourceQuery(vector=vec), cfg.k).items
            else:
                _, idx = source.search(vec, cfg.k, allowed)  # type: ignore[attr-defined]
                items = idx[0][idx[0] >= 0]
            hits[j] = item in items
            t = types[items] == types[item]
            same_type[j] = t.sum() / cfg.k
            same_both[j] = (t & (colours[items] == colours[item])).sum() / cfg.k
        report.methods[name] = {
            f"recall@{cfg.k}": round(float(hits.mean()), 4),
            f"type@{cfg.k}": round(float(same_type.mean()), 4),
            f"type_colour@{cfg.k}": round(float(same_both.mean()), 4),
            "ms_per_query": round((time.perf_counter() - t0) * 1e3 / len(held), 3),
        }
    report.params = {"held_out": cfg.held_out, "seed": cfg.seed, "products": len(catalog)}
    return report
