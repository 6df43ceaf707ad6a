"""Visual search: a photo finds its product, a crop finds what is in it, bad input says why."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from chains import ask, chain
from PIL import Image

from moodboard.config import VisualConfig
from moodboard.data import ItemFilter
from moodboard.errors import ConfigError, InputError
from moodboard.serve.registry import Engine
from moodboard.understand.upload import decode_upload


def _photo(path: str, size: tuple[int, int] = (300, 300), fmt: str = "JPEG") -> bytes:
    """A shopper's photo of a catalog image: resized and re-encoded."""
    out = io.BytesIO()
    Image.open(path).convert("RGB").resize(size, Image.Resampling.BICUBIC).save(
        out, fmt, **({"quality": 80} if fmt == "JPEG" else {})
    )
    return out.getvalue()


def _side_by_side(left: str, right: str) -> bytes:
    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    canvas = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


def _first(engine: Engine, article: np.ndarray, name: str, n: int = 1) -> list[int]:
    return [int(i) for i in np.flatnonzero(article == name)[:n]]


def test_a_photo_of_a_catalog_item_finds_it_first(
    engine: Engine, article: np.ndarray, image_vectors: np.ndarray
) -> None:
    items = np.random.default_rng(3).choice(len(engine.catalog), 12, replace=False)
    same_type = []
    for n, i in enumerate(items):
        fmt = "PNG" if n % 3 == 0 else "JPEG"
        res = ask(engine.visual, 10, image=_photo(engine.catalog.image[i], fmt=fmt))
        top = int(res.candidates.items[0])
        assert top == i or float(image_vectors[top] @ image_vectors[i]) >= 0.97, (i, top)
        same_type.append(np.mean(article[res.candidates.items] == article[i]))
        assert set(res.timings_ms) >= {"encode", "visual/image", "total"}
    assert np.mean(same_type) >= 0.5  # measured 0.77; random ~0.1


def test_a_photo_of_an_excluded_product_finds_others_of_its_kind(
    engine: Engine, article: np.ndarray
) -> None:
    shirt = _first(engine, article, "Shirts")[0]
    photo = _photo(engine.catalog.image[shirt], fmt="JPEG")
    assert ask(engine.visual, 5, image=photo).candidates.items[0] == shirt
    res = ask(engine.visual, 5, image=photo, exclude=[shirt])  # "more like this, not this"
    assert shirt not in res.candidates.items and len(res.candidates) == 5
    assert np.mean(article[res.candidates.items] == "Shirts") >= 0.6


def test_a_crop_finds_what_is_in_the_crop(engine: Engine, article: np.ndarray) -> None:
    shirt = _first(engine, article, "Shirts")[0]
    bag = _first(engine, article, "Handbags")[0]
    photo = _side_by_side(engine.catalog.image[shirt], engine.catalog.image[bag])
    width, height = Image.open(io.BytesIO(photo)).size
    half = width // 2
    left = ask(engine.visual, 8, image=photo, crop=(0, 0, half, height)).candidates.items
    right = ask(
        engine.visual, 8, image=photo, crop=(half, 0, width - half, height)
    ).candidates.items
    assert left[0] == shirt and np.mean(article[left] == "Shirts") >= 0.75
    assert right[0] == bag and np.mean(article[right] == "Handbags") >= 0.75
    whole = ask(engine.visual, 8, image=photo).candidates.items
    assert shirt not in whole[:1] or bag not in whole[:1]  # the whole photo is neither alone
    assert list(whole) != list(left) and list(whole) != list(right)


def test_category_filter_and_full_pages_from_popular(engine: Engine, article: np.ndarray) -> None:
    shirt = _first(engine, article, "Shirts")[0]
    photo = _photo(engine.catalog.image[shirt])
    watches = ItemFilter(attributes={"category": ("Watches",)})
    res = ask(engine.visual, 24, image=photo, item_filter=watches)
    assert len(res.candidates) == 24 and set(article[res.candidates.items]) == {"Watches"}
    nothing = ItemFilter(attributes={"category": ("Spaceships",)})
    assert len(ask(engine.visual, 24, image=photo, item_filter=nothing).candidates) == 0
    no_index = {"popular/trending": engine.sources["popular/trending"]}  # no visual index
    blind = chain("visual", engine, no_index, VisualConfig())
    res = ask(blind, 24, image=photo)
    assert len(res.candidates) == 24 and set(res.candidates.sources) == {"popular/trending"}
    res = ask(blind, 24, image=photo, item_filter=watches)
    assert len(res.candidates) == 24 and set(article[res.candidates.items]) == {"Watches"}


def test_near_duplicates_can_be_dropped(engine: Engine, image_vectors: np.ndarray) -> None:
    sim = image_vectors @ image_vectors.T
    np.fill_diagonal(sim, 0)
    i = int(np.flatnonzero((sim >= 0.999).any(1))[0])
    photo = _photo(engine.catalog.image[i])
    twins = set(np.flatnonzero(sim[i] >= 0.97)) | {i}
    shown = ask(engine.visual, 5, image=photo).candidates.items
    assert len(twins & set(shown)) >= 2  # by default a shopper sees every listing of it
    dedup = chain("visual", engine, config=VisualConfig(dedup_threshold=0.97))
    page = ask(dedup, 5, image=photo).candidates.items
    assert len(twins & set(page)) == 1 and len(page) == 5


def test_bad_uploads_and_crops_say_what_to_fix(engine: Engine, article: np.ndarray) -> None:
    photo = _photo(engine.catalog.image[0], size=(200, 100))
    for bad in (b"", b"GIF89a not really", b"\xff\xd8\xff\xe0 truncated jpeg", photo[:40]):
        with pytest.raises(InputError, match="could not decode the upload as an image: send a"):
            ask(engine.visual, 5, image=bad)
    for crop in ((150, 0, 60, 50), (0, 0, 7, 50), (-1, 0, 50, 50), (0, 60, 50, 50)):
        with pytest.raises(InputError, match=r"crop box must lie inside the 200 x 100 px"):
            ask(engine.visual, 5, image=photo, crop=crop)
    with pytest.raises(InputError, match="four integers"):
        ask(engine.visual, 5, image=photo, crop=(0, 0, 50))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'k' parameter of Surface 'visual'"):
        ask(engine.visual, 0, image=photo)
    assert ask(engine.visual, 3, image=photo, crop=(0, 0, 200, 100)).candidates.items.size == 3


def test_crop_boxes_are_in_upright_pixels(tmp_path: Path) -> None:
    im = Image.new("RGB", (300, 200), "red")
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown 200 wide, 300 high
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif.tobytes())
    assert decode_upload(out.getvalue(), (0, 0, 200, 300)).size == (200, 300)
    with pytest.raises(InputError, match="200 x 300 px"):
        decode_upload(out.getvalue(), (0, 0, 300, 200))
