"""Train the object detector's head on synthetic photos (``understand.composites``).

Run ``python -m moodboard.understand.detect_train [--images DIR] [--out FILE] [--photos N]
[--epochs E]`` (``--images``: default ``$MOODBOARD_DATASETS/fashion-product-images-small/
images``): it cuts out the products of the fashion catalog's train split
(``composites.split_of``), makes ``N`` photos of 1-4 of them on varied backgrounds, runs the
frozen backbone once per photo, trains the head (CenterNet losses: penalty-reduced focal loss
on a Gaussian objectness map, L1 on the centre offset and size at each object's cell), reports
recall and precision at IoU 0.5 on photos of held-out (test split) products, and writes the
head as fp16 safetensors with those figures in its metadata.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from moodboard.understand.composites import Composite, Cutout, compose, cutout, split_of
from moodboard.understand.detect import (
    WEIGHTS,
    DetectorConfig,
    decode,
    feature_maps,
    make_head,
    to_input,
)
from moodboard.understand.detect import box_iou as iou

_log = logging.getLogger(__name__)

#: The images of the fashion catalog, under ``$MOODBOARD_DATASETS``.
FASHION_IMAGES = "fashion-product-images-small/images"


def fashion_cutouts(images: Path, split: str, limit: int, seed: int = 0) -> list[Cutout]:
    """Cut-outs of up to ``limit`` products of ``split`` (``<id>.jpg`` files of the fashion
    catalog's ``images`` folder), drawn at random (``seed``)."""
    files = sorted(p for p in Path(images).glob("*.jpg") if split_of(p.stem) == split)
    rng = np.random.default_rng(seed)
    out: list[Cutout] = []
    for j in rng.permutation(len(files)):
        with Image.open(files[j]) as im:
            c = cutout(im)
        if c is not None:
            out.append(c)
        if len(out) == limit:
            break
    return out


def targets(comp: Composite, grid: int) -> np.ndarray:
    """The training target of one photo: ``6 x G x G`` (objectness heat, centre x and y in
    the cell, width and height shares, and a mask of the object cells)."""
    h, w = comp.image.shape[:2]
    t = np.zeros((6, grid, grid), dtype=np.float32)
    yy, xx = np.mgrid[0:grid, 0:grid]
    for x, y, bw, bh in comp.boxes:
        cx, cy = (x + bw / 2) / w * grid, (y + bh / 2) / h * grid
        c, r = min(int(cx), grid - 1), min(int(cy), grid - 1)
        sigma = max(0.5, 0.15 * (bw / w + bh / h) * grid)
        g = np.exp(-((xx - c) ** 2 + (yy - r) ** 2) / (2 * sigma**2))
        t[0] = np.maximum(t[0], g)
        t[1:5, r, c] = (cx - c, cy - r, bw / w, bh / h)
        t[5, r, c] = 1.0
    return t


def _focal(logit: Any, heat: Any) -> Any:
    """CenterNet's penalty-reduced focal loss, per object."""
    import torch

    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    loss_pos = -torch.log(p) * (1 - p) ** 2 * pos
    loss_neg = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)
    return (loss_pos.sum() + loss_neg.sum()) / pos.sum().clamp(min=1)


def photo_jitter(image: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A composite as a camera might have taken it: brightness, contrast and colour balance
    jittered, sometimes blurred, sometimes JPEG-compressed hard (training only)."""
    x = image.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    x = (x - x.mean()) * rng.uniform(0.7, 1.3) + x.mean()
    x *= rng.uniform(0.9, 1.1, 3)
    im = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    if rng.random() < 0.3:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(rng.integers(30, 90)))
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return im


def _features(
    photos: Sequence[Composite], size: int, rng: np.random.Generator | None = None
) -> Any:
    import torch

    parts, batch = [], 32
    for s in range(0, len(photos), batch):
        imgs = [
            to_input(Image.fromarray(c.image) if rng is None else photo_jitter(c.image, rng), size)
            for c in photos[s : s + batch]
        ]
        parts.append(feature_maps(np.stack(imgs)).to(torch.float16))
    return torch.cat(parts)


def evaluate(head: Any, feats: Any, photos: Sequence[Composite], cfg: DetectorConfig) -> dict:
    """Recall and precision of boxes at IoU 0.5 over ``photos`` (features ``feats``)."""
    import torch

    hit = total = found = right = 0
    with torch.inference_mode():
        out = head(feats.float()).numpy()
    for o, comp in zip(out, photos, strict=True):
        h, w = comp.image.shape[:2]
        dets = [d.box for d in decode(o, w, h, cfg)]
        total += len(comp.boxes)
        found += len(dets)
        hit += sum(any(iou(b, d) >= 0.5 for d in dets) for b in comp.boxes)
        right += sum(any(iou(b, d) >= 0.5 for b in comp.boxes) for d in dets)
    return {"recall_iou50": hit / max(total, 1), "precision_iou50": right / max(found, 1)}


def train(
    images: Path,
    photos: int = 3000,
    epochs: int = 40,
    hidden: int = 96,
    size: int = 320,
    seed: int = 0,
    held_out: int = 300,
) -> tuple[Any, dict[str, Any]]:
    """Train the head; returns it (eval mode) and its figures on held-out products."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    grid = size // 32
    t0 = time.perf_counter()
    pool = fashion_cutouts(images, "train", 4000, seed)
    test_pool = fashion_cutouts(images, "test", 800, seed + 1)
    train_photos = [compose(rng, pool, (1, 4)) for _ in range(photos)]  # one: a catalog shot
    test_photos = [compose(rng, test_pool) for _ in range(held_out)]
    _log.info("%d + %d photos made in %.0f s", photos, held_out, time.perf_counter() - t0)
    feats, test_feats = _features(train_photos, size, rng), _features(test_photos, size)
    target = torch.from_numpy(np.stack([targets(c, grid) for c in train_photos]))
    _log.info("features in %.0f s", time.perf_counter() - t0)
    head = make_head(hidden)
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * ((photos + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for epoch in range(epochs):
        head.train()
        order = torch.randperm(photos)
        total = 0.0
        for s in range(0, photos, 64):
            idx = order[s : s + 64]
            x, t = feats[idx].float(), target[idx]
            out = head(x)
            mask = t[:, 5:6]
            n = mask.sum().clamp(min=1)
            box = torch.sigmoid(out[:, 1:5])
            l1 = ((box - t[:, 1:5]).abs() * mask).sum() / n
            loss = _focal(out[:, 0], t[:, 0]) + 5.0 * l1
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        _log.info("epoch %d loss %.4f", epoch, total / photos)
    head.eval()
    metrics = evaluate(head, test_feats, test_photos, DetectorConfig())
    metrics |= {"photos": photos, "epochs": epochs, "seconds": time.perf_counter() - t0}
    return head, metrics


def save(head: Any, path: Path, metrics: dict[str, Any], hidden: int, size: int) -> None:
    """Write the head as fp16 safetensors, with its figures in the metadata."""
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in head.state_dict().items()}
    meta = {"hidden": str(hidden), "input_size": str(size), "metrics": json.dumps(metrics)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("MOODBOARD_DATASETS", "."), FASHION_IMAGES)
    ap.add_argument("--images", type=Path, default=default, help="The fashion images folder.")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--photos", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    head, metrics = train(args.images, args.photos, args.epochs, args.hidden, seed=args.seed)
    save(head, args.out, metrics, args.hidden, 320)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
