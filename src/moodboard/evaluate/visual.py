"""Visual search, served: 1-NN article type and precision@5 of held-out products' photos.

The catalog (the fashion one for ``moodboard evaluate visual``) is indexed three ways in the
same run: (a) today's ImageNet EfficientNet-Lite0 features, (b) the general fashion head
shipped in the package, on the features of the backbone tail it was trained with
(``understand.visual_tail``), (c) that head adapted to the catalog as a build adapts it
(``build.visual.adapt_head``), with the held-out products' labels hidden from it. Each is
served by the visual surface's own chain (``surfaces.build_surface`` with the configured
``[surfaces.visual]``, the upload embedded by ``serve.image_space.SharedImageEncoder`` with
the variant's head, as ``POST /visual-search`` does, and the image category classifier a build
fits on the variant's vectors, the held-out products' categories hidden from it): upload bytes
in, page out, the query product itself excluded. The object detector is left out: it adds
object rows but the page's own list is the whole photo's either way.

The queries are held-out products (``evaluate.visual_split``: by product id, seed fixed; the
general head never trained on them), sampled with a fixed seed, asked twice: their clean
catalog shot, and a photo-like view (background pasted, cropped, rotated, relit) made with the
``"eval"`` backgrounds, a family the heads never trained on (``understand.augment``), sent as
a JPEG. A hit is a result of the query's article type (its leaf category).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from moodboard.build.steps import VisualStep
from moodboard.build.visual import adapt_head
from moodboard.config import Settings
from moodboard.data import Catalog, Request
from moodboard.evaluate.visual_split import SEED, heldout
from moodboard.retrieve import TrainingData
from moodboard.serve.image_space import SharedImageEncoder
from moodboard.surfaces import build_surface
from moodboard.surfaces.visual import CATEGORY
from moodboard.understand.augment import augment, view_rng
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.categorize import CategoryClassifier
from moodboard.understand.image import DIM, ImageEncoder
from moodboard.understand.visual_head import VisualHead, catalog_labels

_log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: The variants compared, in order.
VARIANTS = ("imagenet", "general", "adapted")
KINDS = ("clean", "augmented")


class VisualEvalConfig(BaseModel):
    """Parameters of the visual evaluation.

    Attributes
    ----------
    queries
        Held-out products asked (a seeded sample; all if fewer).
    k
        Results scored for precision (1-NN is the first).
    seed
        Sampling and augmentation seed.
    variants
        Which of ``VARIANTS`` to measure.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    queries: int = Field(default=500, ge=1, le=100_000)
    k: int = Field(default=5, ge=1, le=100)
    seed: int = SEED
    variants: tuple[str, ...] = VARIANTS


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def query_uploads(paths: list[str], seed: int) -> dict[str, list[bytes]]:
    """Each query's clean file bytes and a photo-like JPEG of it (``"eval"`` backgrounds)."""
    clean = [Path(p).read_bytes() for p in paths]
    aug = []
    for blob in clean:
        with Image.open(io.BytesIO(blob)) as im:
            aug.append(_jpeg(augment(im, view_rng(content_key(blob), 0, seed), family="eval")))
    return {"clean": clean, "augmented": aug}


def served_scores(
    surface: Any, uploads: list[bytes], ids: list[str], types: np.ndarray, catalog: Catalog, k: int
) -> dict[str, float]:
    """1-NN and precision@k of pages the visual chain serves for ``uploads``, the query
    product itself left out (``Request.exclude``, as a client excludes items)."""
    nn1, prec, ms = [], [], []
    for blob, item in zip(uploads, ids, strict=True):
        t0 = time.perf_counter()
        page = surface(Request(surface="visual", image=blob, k=k, exclude=(item,)))
        ms.append((time.perf_counter() - t0) * 1e3)
        if item in page.item_ids:
            raise RuntimeError(f"the visual chain served the excluded product {item!r}")
        got = catalog.ids.indices(list(page.item_ids)[:k])
        want = types[catalog.ids.index(item)]
        hits = types[got] == want
        nn1.append(bool(hits[0]) if len(hits) else False)
        prec.append(float(hits.sum()) / k)
    return {
        "nn1": round(float(np.mean(nn1)), 4),
        f"p@{k}": round(float(np.mean(prec)), 4),
        "ms_p50": round(float(np.median(ms)), 1),
    }


def evaluate_visual(
    catalog: Catalog,
    settings: Settings,
    config: VisualEvalConfig | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """1-NN article type and precision@k of held-out products through the served chain.

    Parameters
    ----------
    catalog
        Products with images and categories (the fashion catalog).
    settings
        Whose ``[visual_head]``, ``[retrieve.visual]``, ``[surfaces.visual]`` and
        ``serve.max_image_pixels`` the variants are built and served with.
    cache_dir
        Where backbone features (clean and augmented views) are cached by content; None:
        no cache.

    Returns
    -------
    dict
        ``results[kind][variant]`` with ``nn1``, ``p@k`` and the chain's p50 ms, the query and
        catalog sizes, the adapted head's training metrics and the seconds taken.
    """
    cfg = config or VisualEvalConfig()
    say = progress or (lambda _m: None)
    t_start = time.perf_counter()
    enc = ImageEncoder()
    has = np.array([bool(p) and Path(p).is_file() for p in catalog.image])
    rows = np.flatnonzero(has)
    cache = None if cache_dir is None else EmbeddingCache(cache_dir, DIM, enc.cache_name)
    say(f"embedding {len(rows):,} catalog images (cached by content)")
    backbone = np.zeros((len(catalog), DIM), dtype=np.float32)
    backbone[rows] = enc.encode_paths([catalog.image[i] for i in rows], cache, skip_bad=True)
    has = backbone.any(axis=1)
    held = heldout(catalog.ids.to_list())
    labels = catalog_labels(catalog, settings.visual_head.attributes)
    types = labels["category"]
    heads: dict[str, VisualHead | None] = {"imagenet": None}
    general = VisualHead.general()
    tuned_enc = general.image_encoder()  # the trunk and the head's tail
    tuned = backbone
    if tuned_enc.cache_name != enc.cache_name:
        say(f"embedding them with the general head's tail ({tuned_enc.cache_name})")
        tuned = np.zeros_like(backbone)
        t_cache = (
            None if cache_dir is None else EmbeddingCache(cache_dir, DIM, tuned_enc.cache_name)
        )
        tuned[rows] = tuned_enc.encode_paths([catalog.image[i] for i in rows], t_cache, True)
    if "general" in cfg.variants:
        heads["general"] = general
    adapted_entry: dict[str, Any] = {}
    if "adapted" in cfg.variants:
        say("adapting the general head to the catalog (held-out labels hidden)")
        masked = {k: np.where(held, -1, v) for k, v in labels.items()}
        views_cache = (
            None
            if cache_dir is None
            else EmbeddingCache(cache_dir, DIM, f"{tuned_enc.cache_name}-views")
        )
        head, adapted_entry = adapt_head(
            general,
            tuned,
            has,
            catalog.image,
            masked,
            np.zeros((0, 2), np.int64),
            settings.visual_head,
            views_cache,
        )
        heads["adapted"] = head
    pool = np.flatnonzero(held & has & (types >= 0))
    rng = np.random.default_rng(cfg.seed)
    picked = np.sort(rng.choice(pool, min(cfg.queries, len(pool)), replace=False))
    ids = catalog.ids.external(picked)
    uploads = query_uploads([catalog.image[i] for i in picked], cfg.seed)
    results: dict[str, dict[str, dict[str, float]]] = {kind: {} for kind in KINDS}
    leaf = catalog.leaf_category()
    hidden_leaf = [None if h else c for h, c in zip(held, leaf, strict=True)]
    classifiers: dict[str, dict[str, Any]] = {}
    for name in (v for v in VARIANTS if v in heads):
        head = heads[name]
        vectors = backbone if head is None else head(tuned)
        source = VisualStep(settings.retrieve.visual).fit(
            TrainingData(catalog=catalog, item_features={"image": vectors})
        )
        images = SharedImageEncoder(settings.serve.max_image_pixels, head)
        resources: dict[str, Any] = {"encode_upload": images.encode_upload}
        if settings.surfaces.visual.category.enabled:  # as a build fits it, labels hidden
            clf = CategoryClassifier(settings.surfaces.visual.category)
            resources[CATEGORY] = clf.fit(vectors, hidden_leaf)
            classifiers[name] = clf.metrics
        surface = build_surface(
            "visual",
            settings.surfaces.visual,
            catalog,
            {"visual/image": source},
            settings.seed,
            resources,
        )
        for kind in KINDS:
            say(f"{name}: {len(ids)} {kind} queries through the visual chain")
            results[kind][name] = served_scores(surface, uploads[kind], ids, types, catalog, cfg.k)
    return {
        "results": results,
        "queries": len(ids),
        "catalog": int(has.sum()),
        "heldout": int((held & has).sum()),
        "k": cfg.k,
        "seed": cfg.seed,
        "adapted": adapted_entry.get("metrics", {}),
        "category_classifier": classifiers,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
