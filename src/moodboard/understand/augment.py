"""Photo-like views of catalog shots, embedded by the frozen backbone (the visual head's data).

Catalog images are studio shots on white; shoppers' photos are not. ``augment`` turns a studio
shot into a plausible photo of the same product: the product is cut out (the white background
connected to the border is the mask: cheap and exact enough on studio shots), scaled, rotated
and put in perspective, pasted on a non-white background, cropped, flipped, its light changed
(brightness, contrast, a little saturation: never its hue, so its colour class stays) and
sometimes blurred. ``augmented_features`` embeds K such views per image with the backbone,
caching them by (content, view, seed) like the clean features.

Two background families exist so an evaluation can use ones the head never saw in training:
``"train"`` (plain colours, gradients, blotchy textures) and ``"eval"`` (stripes, checks,
noisy textures with other palettes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage

from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.image import ImageEncoder

_log = logging.getLogger(__name__)

#: Bump when ``augment`` changes: cached views are keyed by it.
VERSION = 1
Family = Literal["train", "eval"]
_TOLERANCE = 18  # a pixel this close to the border's colour (per channel) may be background


def product_mask(im: Image.Image) -> Image.Image:
    """The product's mask (L, 255 = product): all but the background touching the border.

    The background is the border's median colour (studio white or light grey), within a
    tolerance, and connected to the border.
    """
    rgb = np.asarray(im.convert("RGB")).astype(np.int16)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    ref = np.median(border, axis=0)
    near = np.abs(rgb - ref).max(axis=2) < _TOLERANCE
    labels, _ = ndimage.label(near)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    mask = (~np.isin(labels, edge[edge > 0])).astype(np.uint8) * 255
    return Image.fromarray(mask, "L").filter(ImageFilter.GaussianBlur(1))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def background(size: int, rng: np.random.Generator, family: Family = "train") -> Image.Image:
    """A random non-white ``size`` x ``size`` RGB background of the given family."""
    kind = int(rng.integers(3))
    if family == "train":
        if kind == 0:  # a plain, slightly shaded wall
            return Image.new("RGB", (size, size), _colour(rng)).filter(ImageFilter.BLUR)
        if kind == 1:  # a gradient between two colours
            t = np.linspace(0, 1, size)[:, None, None]
            a, b = np.array(_colour(rng)), np.array(_colour(rng))
            g = np.broadcast_to(a * (1 - t) + b * t, (size, size, 3))
            im = Image.fromarray(g.astype(np.uint8), "RGB")
            return im.rotate(float(rng.uniform(0, 360)), fillcolor=_colour(rng))
        cells = int(rng.integers(3, 12))  # blotches: low-resolution colour noise, smoothed
        base = np.array(_colour(rng)) + rng.normal(0, 50, (cells, cells, 3))
        im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        return im.resize((size, size), Image.Resampling.BICUBIC)
    if kind == 0:  # stripes (a floor, a curtain)
        period = int(rng.integers(6, 40))
        a, b = _colour(rng), _colour(rng)
        stripes = (np.arange(size) // period) % 2
        g = np.where(stripes[:, None, None] == 0, np.array(a), np.array(b))
        g = np.broadcast_to(g, (size, size, 3)).astype(np.uint8)
        return Image.fromarray(g, "RGB").rotate(float(rng.uniform(0, 180)), fillcolor=a)
    if kind == 1:  # checks (tiles)
        period = int(rng.integers(8, 48))
        y, x = np.mgrid[0:size, 0:size] // period
        g = np.where(((x + y) % 2 == 0)[..., None], np.array(_colour(rng)), np.array(_colour(rng)))
        return Image.fromarray(g.astype(np.uint8), "RGB")
    noise = rng.normal(float(rng.uniform(60, 200)), 40, (size, size, 3))  # a grainy texture
    tint = np.array(_colour(rng)) / 255.0
    return Image.fromarray(np.clip(noise * tint * 1.5, 0, 255).astype(np.uint8), "RGB")


def augment(
    im: Image.Image, rng: np.random.Generator, size: int = 224, family: Family = "train"
) -> Image.Image:
    """A photo-like ``size`` x ``size`` RGB view of a studio shot (see the module's docstring)."""
    im = im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    mask = product_mask(im)
    angle = float(rng.uniform(-20, 20))
    im = im.rotate(angle, Image.Resampling.BILINEAR, fillcolor=(255, 255, 255))
    mask = mask.rotate(angle, Image.Resampling.BILINEAR)
    d = size * 0.12  # perspective: move the corners by up to 12% of the side
    corners = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float64)
    moved = corners + rng.uniform(-d, d, corners.shape)
    coeffs = _perspective(moved, corners)
    im = im.transform(im.size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    mask = mask.transform(mask.size, Image.Transform.PERSPECTIVE, coeffs)
    scene = (
        background(size, rng, family)
        if rng.random() < 0.85
        else Image.new("RGB", (size, size), (255, 255, 255))
    )
    scale = float(rng.uniform(0.55, 1.0))
    side = max(16, int(size * scale))
    x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
    scene.paste(im.resize((side, side)), (x, y), mask.resize((side, side)))
    area, ratio = float(rng.uniform(0.6, 1.0)), float(np.exp(rng.uniform(-0.3, 0.3)))
    w = min(size, int(size * np.sqrt(area * ratio)))
    h = min(size, int(size * np.sqrt(area / ratio)))
    left, top = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    out = scene.crop((left, top, left + w, top + h)).resize((size, size))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.7, 1.3)))
    out = ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.7, 1.3)))
    out = ImageEnhance.Color(out).enhance(float(rng.uniform(0.8, 1.2)))
    if rng.random() < 0.3:
        out = out.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
    return out


def _perspective(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """Pillow's 8 perspective coefficients mapping output corners ``dst`` to input ``src``."""
    a = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return tuple(np.linalg.solve(np.array(a), src.reshape(8)).tolist())


def view_rng(key: str, view: int, seed: int) -> np.random.Generator:
    """The generator of one view of one image (by content), reproducible across runs."""
    return np.random.default_rng([seed, view, int(key[:12], 16)])


def augmented_features(
    paths: Sequence[str | Path],
    views: int,
    seed: int,
    encoder: ImageEncoder | None = None,
    cache: EmbeddingCache | None = None,
    family: Family = "train",
    chunk: int = 256,
) -> np.ndarray:
    """Backbone features of ``views`` augmented views of each image file.

    Parameters
    ----------
    cache
        Looked up and filled by (image content, view, seed, family, ``VERSION``) key; its
        dim must be the encoder's.

    Returns
    -------
    np.ndarray
        Float32, shape ``(len(paths), views, encoder.dim)``, unit rows; zero rows for
        unreadable files.
    """
    enc = encoder or ImageEncoder()
    blobs: list[bytes] = []
    for p in paths:
        try:
            blobs.append(Path(p).read_bytes())
        except OSError:
            blobs.append(b"")
    base = [content_key(b) for b in blobs]
    tag = f":aug{VERSION}:{family}:{seed}"
    jobs = [(i, v, f"{base[i]}{tag}:{v}") for i in range(len(paths)) for v in range(views)]
    out = np.zeros((len(paths), views, enc.dim), dtype=np.float32)
    hit = np.zeros(len(jobs), dtype=bool)
    if cache is not None and jobs:
        hit, got = cache.get([k for _, _, k in jobs])
        for j in np.flatnonzero(hit):
            out[jobs[j][0], jobs[j][1]] = got[j]
    todo = [jobs[j] for j in np.flatnonzero(~hit) if blobs[jobs[j][0]]]

    def make(job: tuple[int, int, str]) -> Image.Image | None:
        i, v, _ = job
        try:
            import io

            with Image.open(io.BytesIO(blobs[i])) as im:
                return augment(im, view_rng(base[i], v, seed), family=family)
        except Exception as exc:  # a corrupt catalog file: no view, logged
            _log.warning("no augmented view of %s: %s", paths[i], type(exc).__name__)
            return None

    parts = [todo[start : start + chunk] for start in range(0, len(todo), chunk)]
    with ThreadPoolExecutor(2, thread_name_prefix="moodboard-augment") as pool:
        coming = pool.map(make, parts[0]) if parts else iter(())
        for i, part in enumerate(parts):
            images = list(coming)
            if i + 1 < len(parts):  # the next chunk's views are made while this one embeds
                coming = pool.map(make, parts[i + 1])
            ok = [j for j, im in enumerate(images) if im is not None]
            if not ok:
                continue
            vecs = enc.encode_images([images[j] for j in ok])
            for j, vec in zip(ok, vecs, strict=True):
                out[part[j][0], part[j][1]] = vec
            if cache is not None:
                cache.put([part[j][2] for j in ok], vecs)
    return out
