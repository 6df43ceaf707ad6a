"""Photo-like views of catalog shots (``understand.augment``) through the image encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moodboard.understand.augment import augmented_features
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.image import ImageEncoder


def test_views_do_not_depend_on_how_they_are_chunked_and_come_back_from_the_cache(
    datasets_root: Path, tmp_path: Path
) -> None:
    folder = datasets_root / "fashion-product-images-small" / "images"
    paths = [*sorted(folder.glob("*.jpg"))[:19], tmp_path / "missing.jpg"]
    enc = ImageEncoder()
    whole = augmented_features(paths, 2, 0, enc)  # one chunk
    cache = EmbeddingCache(tmp_path / "cache", enc.dim, "views")
    chunked = augmented_features(paths, 2, 0, enc, cache, chunk=7)  # 6 chunks, made ahead
    assert whole.shape == (20, 2, enc.dim)
    assert np.abs(whole - chunked).max() < 1e-5  # each view is its own image's, in place
    assert not whole[-1].any()  # an unreadable file has no views
    assert np.all(np.abs(np.linalg.norm(whole[:-1], axis=2) - 1) < 1e-5)
    assert np.abs(whole[:, 0] - whole[:, 1]).max() > 0.05  # two different views of each
    again = augmented_features(paths, 2, 0, enc, cache, chunk=7)
    assert np.array_equal(again, chunked)  # from the cache
