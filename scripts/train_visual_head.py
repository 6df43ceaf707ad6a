"""Train the general fashion visual head shipped in the package (fp16 safetensors + JSON).

Usage (about 10 minutes on 2 cores, most of it the backbone embedding the augmented views once;
they are cached by content in ``--cache``, so a rerun trains in seconds)::

    MOODBOARD_DATASETS=/path/to/datasets python scripts/train_visual_head.py \
        --views 4 --out src/moodboard/understand/weights

It trains on the fashion catalog's TRAIN split only: the products ``evaluate.visual_split``
does not hold out (by product id, seed fixed), the ones ``moodboard evaluate visual`` queries
with.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from moodboard.datasets import load_fashion
from moodboard.evaluate.visual_split import dataset_catalog, heldout
from moodboard.understand.augment import augmented_features
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.image import DIM, ImageEncoder
from moodboard.understand.visual_head import VisualHead, VisualHeadConfig, catalog_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--views", type=int, default=4, help="augmented views per product")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/moodboard-visual-cache"))
    parser.add_argument("--out", type=Path, default=Path("src/moodboard/understand/weights"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    catalog = dataset_catalog(load_fashion())
    train = ~heldout(catalog.ids.to_list()) & np.array([bool(p) for p in catalog.image])
    rows = np.flatnonzero(train)
    paths = [catalog.image[i] for i in rows]
    enc = ImageEncoder()
    t0 = time.perf_counter()
    clean = enc.encode_paths(paths, EmbeddingCache(args.cache, DIM, enc.cache_name), skip_bad=True)
    aug_cache = EmbeddingCache(args.cache, DIM, f"{enc.cache_name}-views")
    views = augmented_features(paths, args.views, args.seed, enc, aug_cache)
    logging.info(
        "features of %d products x %d views in %.0f s",
        len(rows),
        args.views,
        time.perf_counter() - t0,
    )
    cfg = VisualHeadConfig(
        epochs=args.epochs, learning_rate=1e-3, max_seconds=1800, seed=args.seed, validation=0.1
    )
    labels = {k: v[rows] for k, v in catalog_labels(catalog, cfg.attributes).items()}
    head = VisualHead(cfg).fit(clean, views, labels)
    head.metrics |= {
        "catalog": "fashion-product-images-small (train split)",
        "views_per_item": args.views,
    }
    head.save(args.out, fp16=True)
    logging.info("saved %s: %s", args.out, head.metrics)


if __name__ == "__main__":
    main()
