"""The learned visual embedding's costs: one upload's embedding, and the build's adaptation.

Query: ``SharedImageEncoder.encode_upload`` (what ``/visual-search`` runs: decode, backbone,
head) on fashion catalog JPEGs (224 x 224) and on 1600 x 1200 photo-like JPEGs, with the
general head and without a head (the ImageNet features), p50 and p99 over ``--repeat`` calls.

Build: ``build.visual.adapt_head`` (the adaptation the ``visual/image`` step runs) on the first
``--items`` fashion products with the configured ``[visual_head]``: the photo-like views through
the backbone (cold: an empty views cache), then the head's training; the catalog's clean
backbone features are the image step's own cost (cached here, as a rebuild finds them).

Usage: ``MOODBOARD_DATASETS=/path python bench/visual.py [--items 9583] [--repeat 200]``.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.build.visual import adapt_head
from moodboard.config import load_settings
from moodboard.datasets import load_fashion
from moodboard.evaluate.visual_split import dataset_catalog
from moodboard.serve.image_space import SharedImageEncoder
from moodboard.understand.augment import augment
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.image import DIM, ImageEncoder
from moodboard.understand.visual_head import VisualHead, catalog_labels

COLUMNS = ["what", "input", "n", "p50_ms", "p99_ms", "seconds"]


def _photo(path: str, seed: int) -> bytes:
    with Image.open(path) as im:
        view = augment(im, np.random.default_rng(seed), size=224, family="eval")
    buf = io.BytesIO()
    view.resize((1600, 1200)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=9583)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/moodboard-visual-cache"))
    args = parser.parse_args()
    catalog = dataset_catalog(load_fashion())
    rows = np.array([i for i, p in enumerate(catalog.image) if p][: args.items])
    general = VisualHead.general()
    uploads = {
        "catalog jpeg 224x224": [Path(catalog.image[i]).read_bytes() for i in rows[:50]],
        "photo jpeg 1600x1200": [_photo(catalog.image[i], int(i)) for i in rows[:50]],
    }
    out = []
    for name, head in (("backbone only", None), ("backbone + head", general)):
        enc = SharedImageEncoder(head=head)
        enc.encode_upload(uploads["catalog jpeg 224x224"][0])  # the model loads once
        for kind, blobs in uploads.items():
            ms = []
            for j in range(args.repeat):
                t0 = time.perf_counter()
                enc.encode_upload(blobs[j % len(blobs)])
                ms.append((time.perf_counter() - t0) * 1e3)
            out.append(
                {
                    "what": f"upload: {name}",
                    "input": kind,
                    "n": args.repeat,
                    "p50_ms": float(np.percentile(ms, 50)),
                    "p99_ms": float(np.percentile(ms, 99)),
                    "seconds": float(np.sum(ms) / 1e3),
                }
            )
    settings = load_settings()
    enc = ImageEncoder()
    backbone = np.zeros((len(catalog), DIM), dtype=np.float32)
    cache = EmbeddingCache(args.cache, DIM, enc.cache_name)
    backbone[rows] = enc.encode_paths([catalog.image[i] for i in rows], cache, skip_bad=True)
    has = backbone.any(axis=1)
    labels = catalog_labels(catalog, settings.visual_head.attributes)
    with tempfile.TemporaryDirectory() as tmp:
        views_cache = EmbeddingCache(tmp, DIM, "views")
        t0 = time.perf_counter()
        head, entry = adapt_head(
            general,
            backbone,
            has,
            catalog.image,
            labels,
            np.zeros((0, 2), np.int64),
            settings.visual_head,
            views_cache,
        )
        total = time.perf_counter() - t0
    m = entry["metrics"]
    for what, secs in (
        ("build: photo-like views (cold)", m["views_seconds"]),
        ("build: head training", m["seconds"]),
        ("build: adaptation total", total),
    ):
        out.append(
            {
                "what": what,
                "input": f"{int(has.sum())} products x {settings.visual_head.views}",
                "n": 1,
                "p50_ms": secs * 1e3,
                "p99_ms": secs * 1e3,
                "seconds": float(secs),
            }
        )
    print(f"adapted: val 1-NN {m.get('val_1nn_init')} -> {m.get('val_1nn')} ({entry['head']})")
    report("visual", out, COLUMNS)


if __name__ == "__main__":
    main()
