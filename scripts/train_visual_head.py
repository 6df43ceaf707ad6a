"""Train the general fashion visual head shipped in the package, with its backbone tail.

Usage (about an hour on 2 AVX2 cores in float32: 28 minutes for the backbone's trunk on the
augmented views, once; they are cached by content in ``--cache``, so a rerun only trains, 35
minutes for rank 32)::

    MOODBOARD_DATASETS=/path/to/datasets python scripts/train_visual_head.py \
        --views 8 --tail-from 13 --rank 32 --out src/moodboard/understand/weights

With ``--tail-from K`` the backbone's blocks from K on and its head convolution are fine-tuned
with the head (``understand.visual_tail``) on the feature maps entering block K: with
``--rank R`` (the shipped tail) as a rank-R change of each pointwise convolution, with
``--rank 0`` every weight (3.9 MB: too big to ship). With ``--tail-from 0`` only the head
trains, on the frozen ImageNet features.

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
from moodboard.understand.image import ImageEncoder, ImageEncoderConfig
from moodboard.understand.visual_head import VisualHead, VisualHeadConfig, catalog_labels
from moodboard.understand.visual_tail import TAIL_FILE, tail_net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--views", type=int, default=8, help="augmented views per product")
    parser.add_argument("--tail-from", type=int, default=13, help="first tuned block; 0: none")
    parser.add_argument("--epochs", type=int, default=None, help="default 8 with a tail, else 60")
    parser.add_argument("--rank", type=int, default=32, help="low-rank tail; 0: tune in full")
    parser.add_argument("--tail-lr", type=float, default=1e-4, help="low-rank factors: 10x")
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="a head folder whose MLP the tuned head starts from (default: the packaged head; "
        "the shipped one started from the frozen-feature head of commit ec313fc)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/moodboard-visual-cache"))
    parser.add_argument("--out", type=Path, default=Path("src/moodboard/understand/weights"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("moodboard.understand._visual_train").setLevel(logging.DEBUG)  # epochs

    catalog = dataset_catalog(load_fashion())
    train = ~heldout(catalog.ids.to_list()) & np.array([bool(p) for p in catalog.image])
    rows = np.flatnonzero(train)
    paths = [catalog.image[i] for i in rows]
    tuned = args.tail_from > 0
    enc = ImageEncoder(ImageEncoderConfig(maps_before=args.tail_from if tuned else None))
    t0 = time.perf_counter()
    clean = enc.encode_paths(paths, EmbeddingCache(args.cache, enc.dim, enc.cache_name), True)
    aug_cache = EmbeddingCache(args.cache, enc.dim, f"{enc.cache_name}-views")
    views = augmented_features(paths, args.views, args.seed, enc, aug_cache)
    logging.info(
        "inputs of %d products x %d views in %.0f s",
        len(rows),
        args.views,
        time.perf_counter() - t0,
    )
    cfg = VisualHeadConfig(
        epochs=args.epochs or (8 if tuned else 60),
        learning_rate=5e-4 if tuned else 1e-3,
        max_seconds=3600,
        seed=args.seed,
        validation=0.1,
    )
    labels = {k: v[rows] for k, v in catalog_labels(catalog, cfg.attributes).items()}
    init = (VisualHead.load(args.init) if args.init else VisualHead.general()) if tuned else None
    front = tail_net(args.tail_from, args.rank) if tuned else None
    head = VisualHead(cfg).fit(clean, views, labels, init=init, front=front, front_lr=args.tail_lr)
    head.metrics |= {
        "catalog": "fashion-product-images-small (train split)",
        "views_per_item": args.views,
        "tail_from_block": args.tail_from if tuned else None,
        "tail_rank": args.rank if tuned else None,
    }
    if not tuned:
        (args.out / TAIL_FILE).unlink(missing_ok=True)
    head.save(args.out, int8=True)
    logging.info("saved %s: %s", args.out, head.metrics)


if __name__ == "__main__":
    main()
