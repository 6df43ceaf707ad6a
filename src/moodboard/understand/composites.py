"""Synthetic photos of several products: catalog cut-outs pasted onto varied backgrounds.

Catalog shots are products on a white studio background, so a product's mask is cheap: the
pixels that are not near-white, holes filled. ``compose`` pastes 2-4 such cut-outs at varied
scales and positions (little overlap), flipped at random, onto a background drawn from plain
colours, gradients, smoothed noise, stripes and checks, or a blurred collage of other
products, on a canvas of random aspect ratio. The boxes are where each product's mask landed.
They train the object detector (``understand.detect``) and evaluate it on held-out products
(``evaluate.objects``); ``split_of`` splits products into train and test by id, seeded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

#: The seed of the train/test split of products (by id).
SPLIT_SEED = 16
#: The share of products in the test split.
TEST_SHARE = 0.2


def split_of(product_id: str, seed: int = SPLIT_SEED) -> str:
    """``"test"`` for ``TEST_SHARE`` of the products (by a seeded hash of the id), else
    ``"train"``: the same answer on every machine and run."""
    digest = hashlib.sha1(f"{seed}:{product_id}".encode()).digest()
    return "test" if int.from_bytes(digest[:4], "big") / 2**32 < TEST_SHARE else "train"


@dataclass(frozen=True)
class Cutout:
    """A product cut out of its studio shot: RGB pixels and a boolean mask, tight to it."""

    rgb: np.ndarray
    mask: np.ndarray


def cutout(image: Image.Image, threshold: int = 232) -> Cutout | None:
    """The product in a white-background shot, or None when it is not one (no clear product:
    under 3% or over 97% of the pixels).

    A pixel belongs to the product when any channel is under ``threshold``; the mask's holes
    are filled and specks removed, then both are cut to the mask's bounding box.
    """
    rgb = np.asarray(image.convert("RGB"))
    mask = rgb.min(axis=2) < threshold
    mask = ndimage.binary_opening(mask, iterations=1)
    mask = ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2))
    share = mask.mean()
    if not 0.03 <= share <= 0.97:
        return None
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Cutout(rgb[y0:y1, x0:x1].copy(), mask[y0:y1, x0:x1].copy())


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, w if rng.random() < 0.5 else h)
    ramp = a[None] * (1 - t[:, None]) + b[None] * t[:, None]
    out = np.broadcast_to(ramp[None], (h, w, 3)) if len(t) == w else ramp[:, None]
    return np.broadcast_to(out, (h, w, 3)).astype(np.uint8)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    coarse = rng.integers(0, 256, (max(2, h // 24), max(2, w // 24), 3), dtype=np.uint8)
    im = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    fine = rng.normal(0, rng.uniform(2, 20), (h, w, 3))
    return np.clip(np.asarray(im, dtype=np.float64) + fine, 0, 255).astype(np.uint8)


def _pattern(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    period = int(rng.integers(6, 60))
    yy, xx = np.mgrid[0:h, 0:w]
    if rng.random() < 0.5:
        on = ((xx + yy * rng.uniform(-1, 1)) // period) % 2 == 0  # stripes
    else:
        on = ((xx // period) + (yy // period)) % 2 == 0  # checks
    return np.where(on[..., None], a, b).astype(np.uint8)


def _collage(rng: np.random.Generator, h: int, w: int, pool: Sequence[Cutout]) -> np.ndarray:
    out = _noise(rng, h, w)
    for _ in range(int(rng.integers(3, 8))):
        c = pool[int(rng.integers(len(pool)))]
        s = rng.uniform(0.3, 0.9) * min(h, w) / max(c.rgb.shape[:2])
        _paste(out, c, s, int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h)))
    blurred = Image.fromarray(out).filter(ImageFilter.GaussianBlur(rng.uniform(3, 8)))
    return np.asarray(blurred).copy()


def background(rng: np.random.Generator, h: int, w: int, pool: Sequence[Cutout]) -> np.ndarray:
    """A ``h x w x 3`` uint8 background: plain, gradient, noise, pattern or blurred collage."""
    kind = rng.integers(5)
    if kind == 0:  # a plain colour, near-white a third of the time (as catalog shots are)
        colour = rng.integers(235, 256, 3) if rng.random() < 1 / 3 else rng.integers(0, 256, 3)
        return np.broadcast_to(colour.astype(np.uint8), (h, w, 3)).copy()
    if kind == 1:
        return _gradient(rng, h, w).copy()
    if kind == 2:
        return _noise(rng, h, w)
    if kind == 3:
        return _pattern(rng, h, w)
    return _collage(rng, h, w, pool)


def _paste(out: np.ndarray, c: Cutout, scale: float, x: int, y: int) -> tuple[int, ...] | None:
    """Paste ``c`` scaled by ``scale`` with its top-left at ``(x, y)``; its visible box."""
    h, w = c.rgb.shape[:2]
    nw, nh = max(4, round(w * scale)), max(4, round(h * scale))
    rgb = np.asarray(Image.fromarray(c.rgb).resize((nw, nh), Image.Resampling.BILINEAR))
    mask = np.asarray(Image.fromarray(c.mask).resize((nw, nh), Image.Resampling.NEAREST))
    H, W = out.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + nw, W), min(y + nh, H)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x]
    region = out[y0:y1, x0:x1]
    region[m] = rgb[y0 - y : y1 - y, x0 - x : x1 - x][m]
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return None
    return (x0 + int(xs.min()), y0 + int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1)


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter > 0 else 0.0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    return _iou(a, b)


@dataclass(frozen=True)
class Composite:
    """A synthetic photo (``H x W x 3`` uint8), its products' boxes ``(x, y, w, h)`` and the
    index in the pool of each pasted product."""

    image: np.ndarray
    boxes: tuple[tuple[int, int, int, int], ...]
    products: tuple[int, ...]


def compose(
    rng: np.random.Generator,
    pool: Sequence[Cutout],
    n_range: tuple[int, int] = (2, 4),
    side_range: tuple[int, int] = (256, 480),
) -> Composite:
    """One synthetic photo of ``n_range`` products of ``pool`` (distinct), each 22-60% of the
    canvas's shorter side (a single product: 50-95%, as a shot of one product), overlapping
    another by an IoU of at most 0.1."""
    h, w = (int(rng.integers(*side_range)) for _ in range(2))
    out = background(rng, h, w, pool)
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    picks = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    boxes: list[tuple[int, int, int, int]] = []
    kept: list[int] = []
    for p in picks:
        c = pool[int(p)]
        if rng.random() < 0.5:
            c = Cutout(c.rgb[:, ::-1].copy(), c.mask[:, ::-1].copy())
        for _ in range(25):
            s = rng.uniform(*((0.5, 0.95) if n == 1 else (0.22, 0.6)))
            s *= min(h, w) / max(c.rgb.shape[:2])
            bw, bh = c.rgb.shape[1] * s, c.rgb.shape[0] * s
            x, y = int(rng.uniform(0, w - bw)), int(rng.uniform(0, h - bh))
            if all(_iou((x, y, bw, bh), b) <= 0.1 for b in boxes):
                box = _paste(out, c, s, x, y)
                if box is not None:
                    boxes.append(box)  # type: ignore[arg-type]
                    kept.append(int(p))
                break
    return Composite(out, tuple(boxes), tuple(kept))
