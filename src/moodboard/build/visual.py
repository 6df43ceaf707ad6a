"""The visual head of a build: the general fashion head, adapted to the workspace when it can.

``visual/image`` serves ``head(features)``, the features of the head's own image encoder (the
ImageNet trunk and the tail the head was trained with, ``understand.visual_tail``). A catalog
with labels (its categories, the attributes of ``[visual_head] attributes``) or engagement
(items the same shopper engaged with one after the other) fine-tunes the packaged general
head (not its tail) on photo-like views of its own images (``understand.augment``, cached by
content); a catalog of images only uses the general head as is. The adapted head is kept
only if it does at least as well as the general one on the validation slice it did not train
on (1-NN of a photo-like view against the catalog).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from moodboard.build.context import BuildContext
from moodboard.understand.augment import augmented_features
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.image import DIM, ImageEncoder
from moodboard.understand.visual_head import (
    VisualHead,
    VisualHeadConfig,
    catalog_labels,
)

_log = logging.getLogger(__name__)

#: ``BuildContext.shared`` key of the served ``visual/image`` vectors (head applied) and which
#: items have an image: what later steps that work in image space read.
VISUAL_VECTORS = "visual_vectors"
_MAX_PAIRS = 50_000


def engaged_pairs(ctx: BuildContext, limit: int = _MAX_PAIRS, seed: int = 0) -> np.ndarray:
    """``(m, 2)`` item indices a shopper engaged with one right after the other (bots left
    out; at most ``limit``, a seeded sample)."""
    _, seqs, _ = ctx.sequences
    parts = [np.stack([s[:-1], s[1:]], axis=1) for s in seqs if len(s) >= 2]
    if not parts:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.concatenate(parts).astype(np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) > limit:
        pairs = pairs[np.random.default_rng(seed).choice(len(pairs), limit, replace=False)]
    return pairs


def build_head(
    ctx: BuildContext, config: VisualHeadConfig
) -> tuple[VisualHead | None, np.ndarray, np.ndarray, dict[str, Any]] | None:
    """The head the version serves (None: the ImageNet features), the catalog's features it
    reads (``(n, 1280)``, zero rows without an image), which items have an image, and its
    manifest entry; None when no product has a readable image."""
    if not config.enabled:
        found = ctx.images
        if found is None:
            return None
        return None, *found, {"head": None, "reason": "[visual_head] enabled = false"}
    general = VisualHead.general()
    encoder = general.image_encoder()
    # the recommenders read the ImageNet features when they train: one pass for both
    found = ctx.image_features(encoder, also=[ImageEncoder()] if ctx.has_sequences else [])
    if found is None:
        return None
    backbone, has = found
    entry: dict[str, Any] = {
        "head": "general",
        "general_metrics": general.metrics,
        "features": encoder.cache_name,
    }
    labels = catalog_labels(ctx.catalog, config.attributes)
    pairs = engaged_pairs(ctx, seed=config.seed) if ctx.has_events else np.zeros((0, 2), int)
    if not config.adapt or (not labels and not len(pairs)):
        why = "[visual_head] adapt = false" if not config.adapt else "no labels nor engagement"
        return general, backbone, has, entry | {"adapted": False, "reason": why}
    head, entry = adapt_head(
        general,
        backbone,
        has,
        ctx.catalog.image,
        labels,
        pairs,
        config,
        ctx._cache(DIM, f"{encoder.cache_name}-views"),
        entry,
    )
    return head, backbone, has, entry


def adapt_head(
    general: VisualHead,
    backbone: np.ndarray,
    has: np.ndarray,
    images: Sequence[str | None],
    labels: dict[str, np.ndarray],
    pairs: np.ndarray,
    config: VisualHeadConfig,
    cache: EmbeddingCache | None = None,
    entry: dict[str, Any] | None = None,
) -> tuple[VisualHead, dict[str, Any]]:
    """The general head fine-tuned on a catalog (``build_head``'s learning, for evaluation too).

    Parameters
    ----------
    general
        The head to start from (from scratch if its shape differs from ``config``'s); the
        adapted head keeps its tail.
    backbone, has
        The catalog's features as ``general`` reads them (``image_encoder``) and which items
        have an image.
    images
        Each item's image file.
    labels
        Per task, each item's class (-1: unknown); ``catalog_labels``.
    pairs
        ``(m, 2)`` co-engaged item indices.
    cache
        Where the photo-like views' features are cached.
    """
    entry = dict(entry or {"head": "general", "general_metrics": general.metrics})
    same_shape = (general.config.hidden, general.dim) == (config.hidden, config.dim)
    init = general if same_shape else None  # another shape: trained from scratch
    t0 = time.perf_counter()
    rows = np.flatnonzero(has)
    if len(rows) > config.max_items:
        rng = np.random.default_rng(config.seed)
        rows = np.sort(rng.choice(rows, config.max_items, replace=False))
    paths = [str(images[i]) for i in rows]
    views = augmented_features(paths, config.views, config.seed, general.image_encoder(), cache)
    views_s = time.perf_counter() - t0
    position = np.full(len(has), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    local = position[pairs] if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    local = local[(local >= 0).all(axis=1)]
    adapted = VisualHead(config).fit(
        backbone[rows], views, {k: v[rows] for k, v in labels.items()}, local, init
    )
    adapted.tail = general.tail
    m = adapted.metrics | {"views_seconds": round(views_s, 2)}
    adapted.metrics = m
    entry |= {"adapted": True, "metrics": m}
    if init is not None and m.get("val_1nn", 1.0) < m.get("val_1nn_init", 0.0):
        _log.info(
            "kept the general visual head: adapted 1-NN %s < %s", m["val_1nn"], m["val_1nn_init"]
        )
        return general, entry | {"reason": "the adapted head did worse on validation"}
    return adapted, entry | {"head": "adapted"}
