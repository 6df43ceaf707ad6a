"""The learned visual embedding's parts: the photo-like views and the head (no engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moodboard.errors import InputError, NotFittedError
from moodboard.understand.augment import augment, background, product_mask
from moodboard.understand.image import DIM, ImageEncoder, ImageEncoderConfig
from moodboard.understand.visual_head import (
    PACKAGED,
    WEIGHTS_FILE,
    VisualHead,
    VisualHeadConfig,
    nearest_accuracy,
)
from moodboard.understand.visual_tail import TAIL_FILE, map_dim, tail_net


def _studio_shot() -> Image.Image:
    """A red square on a white studio background, with a white area inside it."""
    a = np.full((224, 224, 3), 255, dtype=np.uint8)
    a[60:170, 50:180] = (200, 20, 30)
    a[100:120, 100:120] = 255  # a white logo: the product, not the background
    return Image.fromarray(a)


def test_mask_keeps_the_product_and_its_white_parts() -> None:
    m = np.asarray(product_mask(_studio_shot())) > 127
    assert m[65:165, 55:175].all()  # the product, its white logo included
    assert not m[:40].any() and not m[:, :30].any()  # the studio background


def test_augmented_view_puts_the_product_on_a_background() -> None:
    rng = np.random.default_rng(0)
    views = [np.asarray(augment(_studio_shot(), rng)) for _ in range(20)]
    assert all(v.shape == (224, 224, 3) for v in views)
    # most views replace the white studio background (85% get a pasted one)
    white_corners = sum(bool((v[:8, :8] > 240).all()) for v in views)
    assert white_corners <= 8
    # the product's red survives (its colour class is kept: no hue shift)
    reds = [((v[..., 0] > 1.5 * v[..., 1] + 30) & (v[..., 0] > 100)).mean() for v in views]
    assert np.median(reds) > 0.05
    for family in ("train", "eval"):
        bg = np.asarray(background(64, np.random.default_rng(1), family))  # type: ignore[arg-type]
        assert bg.shape == (64, 64, 3) and not (bg > 245).all()


def _toy(n: int = 240, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Backbone-like unit features: class centres, and noisier photo-like views."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, DIM))
    clean = centres[y] + rng.normal(size=(n, DIM)) * 3
    views = clean[:, None, :] + rng.normal(size=(n, 2, DIM)) * 3
    clean /= np.linalg.norm(clean, axis=1, keepdims=True)
    views /= np.linalg.norm(views, axis=2, keepdims=True)
    return clean.astype(np.float32), views.astype(np.float32), y


def test_head_learns_the_classes_and_round_trips(tmp_path: Path) -> None:
    clean, views, y = _toy()
    cfg = VisualHeadConfig(epochs=15, batch_size=64, learning_rate=1e-3, validation=0.2, seed=3)
    head = VisualHead(cfg).fit(clean, views, {"category": y})
    m = head.metrics
    assert m["loss"] < m["loss_first"] and m["validation_items"] == 48
    assert m["val_1nn"] >= 0.9  # photo-like views of unseen items find their class
    z = head(clean)
    assert z.shape == (len(clean), cfg.dim)
    assert np.allclose(np.linalg.norm(z, axis=1), 1, atol=1e-5)
    assert not head(np.zeros((2, DIM), np.float32)).any()  # no image: no vector
    head.save(tmp_path, fp16=True)
    again = VisualHead.load(tmp_path)
    assert np.abs(again(clean) - z).max() < 2e-3
    assert again.metrics["val_1nn"] == m["val_1nn"]
    head.save(tmp_path / "int8", int8=True)  # int8 rows: about half of fp16's bytes
    small = VisualHead.load(tmp_path / "int8")
    size = (tmp_path / "int8" / WEIGHTS_FILE).stat().st_size
    assert size < 0.6 * (tmp_path / WEIGHTS_FILE).stat().st_size
    assert np.sum(small(clean) * z, axis=1).min() > 0.999
    # adapting from it: starts where it is (its validation 1-NN is reported as the start)
    adapted = VisualHead(cfg).fit(clean, views, {"category": y}, np.array([[0, 1]]), again)
    assert adapted.metrics["val_1nn_init"] >= 0.9 and adapted.metrics["pairs"] <= 1


def test_head_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        VisualHead()(np.zeros((1, DIM), np.float32))
    clean, views, y = _toy(40)
    with pytest.raises(InputError, match=r"shape \(n, 1280\)"):
        VisualHead(VisualHeadConfig(epochs=1)).fit(clean, views, {"c": y})(np.zeros((1, 5)))
    with pytest.raises(InputError, match="labels of task"):
        VisualHead().fit(clean, views, {"c": y[:5]})
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="no readable visual head"):
        VisualHead.load(tmp_path)


def test_general_head_ships_with_its_low_rank_tail_in_files_under_1_mib() -> None:
    head = VisualHead.general()
    assert head.tail == PACKAGED / TAIL_FILE
    assert (PACKAGED / WEIGHTS_FILE).stat().st_size < 2**19  # the int8 head
    assert head.tail.stat().st_size < 2**20  # the project's rule for a tracked file
    assert head.metrics["tail_from_block"] == 13 and head.metrics["tail_rank"] == 32
    assert head.metrics["val_1nn"] > 0.6
    assert head(np.full((1, DIM), DIM**-0.5, np.float32)).shape == (1, head.dim)
    tuned, plain = head.image_encoder(), ImageEncoder()
    assert tuned.cache_name != plain.cache_name  # tuned features never mix with ImageNet ones
    a, b = tuned.encode_images([_studio_shot()]), plain.encode_images([_studio_shot()])
    assert a.shape == b.shape == (1, DIM) and abs(float(np.linalg.norm(a)) - 1) < 1e-4
    assert np.abs(a - b).max() > 0.01  # the tail computes other features


def _shots(n: int) -> tuple[list[Image.Image], np.ndarray]:
    """Studio shots of two kinds: wide warm boxes and tall cool ones, in varied shades."""
    rng = np.random.default_rng(0)
    images, y = [], np.arange(n) % 2
    for k in y:
        a = np.full((224, 224, 3), 255, dtype=np.uint8)
        c = rng.integers(0, 90, 3)
        if k == 0:
            a[70:150, 20:200] = (200 + c[0] // 2, 40 + c[1], c[2])
        else:
            a[20:200, 80:140] = (c[0], 60 + c[1], 160 + c[2])
        images.append(Image.fromarray(a))
    return images, y


@pytest.mark.parametrize("rank", [0, 16])
def test_a_tail_trained_with_the_head_is_served_as_trained(tmp_path: Path, rank: int) -> None:
    import torch

    images, y = _shots(24)
    maps = ImageEncoder(ImageEncoderConfig(maps_before=13)).encode_images(images)
    assert maps.shape == (24, map_dim(224))
    front = tail_net(13, rank)
    cfg = VisualHeadConfig(epochs=4, batch_size=8, learning_rate=1e-3, validation=0)
    head = VisualHead(cfg).fit(maps, maps[:, None], {"category": y}, front=front, front_lr=1e-3)
    with torch.no_grad():
        trained = head(front(torch.from_numpy(maps)).numpy())
    head.save(tmp_path, fp16=True)
    again = VisualHead.load(tmp_path)
    assert again.tail == tmp_path / TAIL_FILE
    # tuned in full the tail is 3.9 MB; low-rank it fits the package's 1 MiB file rule
    assert (again.tail.stat().st_size < 2**19) is (rank > 0)
    served = again(again.image_encoder().encode_images(images))  # bf16 trunk, fp16 tail
    assert np.all(np.sum(served * trained, axis=1) > 0.98)
    plain = again(ImageEncoder().encode_images(images))  # the ImageNet tail: other vectors
    assert np.sum(plain * trained, axis=1).min() < 0.98
    (tmp_path / "copy").mkdir()
    again.save(tmp_path / "copy")  # a build's adapted head keeps its tail
    assert (tmp_path / "copy" / TAIL_FILE).read_bytes() == again.tail.read_bytes()


def test_a_tail_that_does_not_fit_is_refused_with_its_reason(tmp_path: Path) -> None:
    bad = tmp_path / TAIL_FILE
    bad.write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="Cannot read the visual tail"):
        ImageEncoder(ImageEncoderConfig(tail=bad)).encode_images([_studio_shot()])
    import torch
    from safetensors.torch import load_file, save_file

    save_file({"conv_head.weight": torch.zeros(3)}, str(bad), metadata={"first_block": "15"})
    with pytest.raises(InputError, match="does not fit EfficientNet-Lite0"):
        ImageEncoder(ImageEncoderConfig(tail=bad, image_size=96)).encode_images([_studio_shot()])
    tail_net(15, rank=8).save(bad)  # then a low-rank pair whose ranks disagree: 8 and 4
    state = load_file(str(bad)) | {"conv_head.down": torch.zeros(4, 320, dtype=torch.float16)}
    save_file(state, str(bad), metadata={"first_block": "15", "rank": "8"})
    with pytest.raises(InputError, match="low-rank conv_head that does not fit"):
        ImageEncoder(ImageEncoderConfig(tail=bad, image_size=96)).encode_images([_studio_shot()])


def test_nearest_accuracy_excludes_the_query_itself() -> None:
    index = np.eye(3, dtype=np.float32)
    index = np.vstack([index, index[:1]])  # item 3 duplicates item 0
    labels = np.array([0, 1, 2, 0])
    assert nearest_accuracy(index[:1], index, np.array([0]), labels) == 1.0  # finds item 3
    assert nearest_accuracy(index[1:2], index, np.array([1]), labels) == 0.0
