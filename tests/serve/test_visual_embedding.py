"""The learned visual embedding, built and served: the mini engine's ``visual/image`` space."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from mini import mini_settings
from moodboard.build.context import BuildContext
from moodboard.build.visual import build_head
from moodboard.data import Request
from moodboard.ingest import Workspace, ingest_catalog, ingest_events
from moodboard.serve.registry import Engine
from moodboard.understand.augment import augment, view_rng
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.image import DIM, ImageEncoder
from moodboard.understand.visual_head import WEIGHTS_FILE
from moodboard.understand.visual_tail import TAIL_FILE

#: 1-NN article type of photo-like views through the mini engine's visual chain: measured
#: 0.875 on this sample of 48 (2026-12-06); the floor sits under it (one query is 0.02).
NN1_FLOOR = 0.75


@pytest.fixture(scope="module")
def engine(mini_engine: Workspace) -> Engine:
    return Engine.load(mini_engine, settings=mini_settings())


def test_build_adapts_the_head_and_records_it(engine: Engine) -> None:
    entry = engine.manifest["components"]["visual/image"]
    head = entry["visual_head"]
    assert head["adapted"] is True and head["head"] in {"adapted", "general"}
    m = head["metrics"]
    assert m["views"] == 250 and m["tasks"]["category"] >= 10  # mini_settings: 250 items
    assert m["pairs"] > 0  # co-engaged items from the logs are positives
    assert m["loss"] < m["loss_first"]
    assert 0 <= m["val_1nn_init"] <= 1 and 0 <= m["val_1nn"] <= 1
    assert entry["dim"] == 128 and engine.images.head is not None
    assert (engine.path / entry["path"] / WEIGHTS_FILE).is_file()
    assert engine.images.head.tail == engine.path / entry["path"] / TAIL_FILE  # served with it
    assert "-tail" in head["features"]  # the catalog was embedded through the tail


def test_an_upload_is_embedded_in_the_served_space(engine: Engine) -> None:
    vectors = engine.visual.env.item_vectors("visual/image")
    assert vectors is not None and vectors.shape[1] == 128
    rows = [i for i, p in enumerate(engine.catalog.image) if p][:200:40]
    for i in rows:  # the catalog image itself, uploaded: the same vector (same head)
        v = engine.images.encode_upload(Path(engine.catalog.image[i]).read_bytes())
        assert float(vectors[i] @ v) > 0.98
    crops = [Image.open(engine.catalog.image[i]) for i in rows]
    got = engine.images.embed_images(crops)
    assert got.shape == (len(rows), 128)
    assert np.all(np.sum(got * vectors[rows], axis=1) > 0.98)


def test_photo_like_views_find_their_article_type(engine: Engine) -> None:
    cat = engine.catalog
    types = cat.leaf_category()
    rng = np.random.default_rng(16)
    rows = rng.choice([i for i, p in enumerate(cat.image) if p], 48, replace=False)
    hits = []
    for i in rows:
        blob = Path(cat.image[i]).read_bytes()
        with Image.open(io.BytesIO(blob)) as im:
            view = augment(im, view_rng(content_key(blob), 0, 16), family="eval")
        buf = io.BytesIO()
        view.save(buf, "JPEG", quality=90)
        item = cat.ids.external([i])[0]
        page = engine.visual(Request(surface="visual", image=buf.getvalue(), k=2))
        first = next(j for j in page.item_ids if j != item)  # the product itself left out
        hits.append(types[cat.ids.index(first)] == types[i])
    assert np.mean(hits) >= NN1_FLOOR


def test_a_catalog_of_images_only_uses_the_general_head(ws: Workspace, datasets_root: Path) -> None:
    folder = datasets_root / "fashion-product-images-small" / "images"
    paths = sorted(folder.glob("*.jpg"))[:6]
    table = pa.table(
        {"id": [p.stem for p in paths], "title": ["x"] * 6, "image": [str(p) for p in paths]}
    )
    ingest_catalog(ws, [table])
    ctx = BuildContext(ws, ws.products_table(), mini_settings())
    built = build_head(ctx, ctx.settings.visual_head)
    assert built is not None
    head, features, has, entry = built
    assert head is not None and entry["adapted"] is False and has.all()
    assert entry["reason"] == "no labels nor engagement"
    assert entry["features"] == head.image_encoder().cache_name  # the trunk and the head's tail
    assert head(features).shape == (6, 128)


def test_imagenet_features_are_embedded_with_the_head_only_when_recommenders_train(
    ws: Workspace, datasets_root: Path
) -> None:
    """The build's one image pass also fills the ImageNet features the learned recommenders
    read, but only when some shopper has two interactions (else nothing trains on them)."""
    folder = datasets_root / "fashion-product-images-small" / "images"
    paths = sorted(folder.glob("*.jpg"))[:4]
    ids = [p.stem for p in paths]
    table = pa.table({"id": ids, "title": ["x"] * 4, "image": [str(p) for p in paths]})
    ingest_catalog(ws, [table])
    keys = [content_key(p.read_bytes()) for p in paths]

    def imagenet_cached() -> np.ndarray:  # a new cache object: it reads the files afresh
        cache = EmbeddingCache(ws.root / "cache" / "embeddings", DIM, ImageEncoder().cache_name)
        return cache.get(keys)[0]

    def clicks(users: list[str], items: list[str], second: int) -> pa.Table:
        return pa.table(
            {
                "event_id": [f"e{second}-{i}" for i in range(len(users))],
                "ts": [f"2026-12-01T10:00:{second:02d}Z"] * len(users),
                "user_id": users,
                "type": ["click"] * len(users),
                "item_id": items,
            }
        )

    ingest_events(ws, [clicks(["a", "b", "c"], ids[:3], 0)])  # one interaction each
    ctx = BuildContext(ws, ws.products_table(), mini_settings())
    assert ctx.has_events and not ctx.has_sequences
    assert build_head(ctx, ctx.settings.visual_head) is not None
    assert not imagenet_cached().any()

    ingest_events(ws, [clicks(["a"], ids[3:], 1)])  # a second one: the recommenders train
    ctx = BuildContext(ws, ws.products_table(), mini_settings())
    assert ctx.has_sequences
    assert build_head(ctx, ctx.settings.visual_head) is not None
    assert imagenet_cached().all()
