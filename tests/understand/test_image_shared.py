"""One pass for two image encoders (``understand.image_shared``): the ImageNet encoder and the
packaged head's tuned one share their first blocks; the shared pass must give each encoder's
own vectors, embed a file once and leave out what it cannot decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodboard.errors import ConfigError
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.image import ImageEncoder, ImageEncoderConfig
from moodboard.understand.image_shared import encode_shared
from moodboard.understand.visual_head import VisualHead


@pytest.fixture(scope="module")
def photos(datasets_root: Path) -> list[Path]:
    folder = datasets_root / "fashion-product-images-small" / "images"
    found = sorted(folder.glob("*.jpg"))[:40]
    assert len(found) == 40
    return found


def test_the_shared_pass_gives_each_encoders_own_vectors_once(
    photos: list[Path], tmp_path: Path
) -> None:
    imagenet, tuned = ImageEncoder(), VisualHead.general().image_encoder()
    assert tuned.config is not None and tuned.config.tail is not None  # a real tuned tail
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    paths = [*photos, photos[0], broken]  # a duplicate and an undecodable file
    caches = [EmbeddingCache(tmp_path / "cache", e.dim, e.cache_name) for e in (imagenet, tuned)]
    assert encode_shared([imagenet, tuned], paths, caches) == 40
    keys = [content_key(p.read_bytes()) for p in photos]
    for enc, cache in zip((imagenet, tuned), caches, strict=True):
        hit, vecs = cache.get(keys)
        assert hit.all()
        own = enc.encode_paths(photos)  # no cache: the encoder's whole forward pass
        assert np.abs(vecs - own).max() < 1e-4
        assert not cache.get([content_key(broken.read_bytes())])[0].any()  # left out
    # the tuned features are not the ImageNet ones (the tail changed the last blocks)
    assert np.abs(caches[0].get(keys)[1] - caches[1].get(keys)[1]).max() > 0.05
    assert encode_shared([imagenet, tuned], paths, caches) == 0  # all cached: nothing to run


def test_encoders_that_differ_by_more_than_their_tail_are_refused(tmp_path: Path) -> None:
    small = ImageEncoder(ImageEncoderConfig(image_size=160))
    caches = [EmbeddingCache(tmp_path / "c", 1280, n) for n in ("a", "b")]
    with pytest.raises(ConfigError, match="differ only by their tail"):
        encode_shared([ImageEncoder(), small], [], caches)
