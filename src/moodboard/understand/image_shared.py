"""Several image encoders over the same files in one pass: each file decoded, and the blocks
the encoders share run, once.

A tuned encoder (``ImageEncoderConfig.tail``) differs from the ImageNet one only from its
tail's first block on (``understand.visual_tail``), so a build that needs both (the tuned
features behind ``visual/image`` and the ImageNet ones the recommenders read as item
features) runs the stem and the first 13 of 16 blocks, about four fifths of the network's
work, once per image, and each encoder's own last blocks on the shared feature map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moodboard.errors import ConfigError, InputError
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.effnet import load_model, run_rest, run_trunk
from moodboard.understand.image import (
    DIM,
    ImageEncoder,
    decode_into,
    model_input,
    pooled,
)
from moodboard.understand.threads import run_batches, shared_pool
from moodboard.understand.visual_tail import tail_first_block


def encode_shared(
    encoders: Sequence[ImageEncoder],
    paths: Sequence[str | Path],
    caches: Sequence[EmbeddingCache],
) -> int:
    """Embed, with every encoder, the files that none of ``caches`` holds yet, and put the
    vectors in each encoder's cache; ``encode_paths`` with those caches then finds them.

    The vectors equal each encoder's own ``encode_paths`` to float rounding. Files that are
    missing or cannot be decoded are left out (each encoder's ``encode_paths`` reports them).

    Parameters
    ----------
    encoders
        Encoders that differ only by their tail (size, precision and layout alike, pooled
        features).
    caches
        One per encoder, of its ``dim`` (what its ``cache_name`` names).

    Returns
    -------
    int
        How many distinct files were embedded.

    Raises
    ------
    ConfigError
        If the encoders differ by more than their tails, or the caches do not fit them.
    """
    cfgs = [e.effective_config for e in encoders]
    if len(caches) != len(cfgs) or any(c.dim != DIM for c in caches):
        raise ConfigError("encode_shared needs one cache of dim 1280 per encoder.")
    shapes = {(c.image_size, c.bf16, c.channels_last, c.maps_before) for c in cfgs}
    if len(shapes) != 1 or cfgs[0].maps_before is not None:
        raise ConfigError(
            "encode_shared runs encoders that differ only by their tail; these differ in "
            f"size, precision, layout or output: {sorted(map(str, shapes))}"
        )
    blobs: dict[str, bytes] = {}
    for p in paths:
        try:
            blob = Path(p).read_bytes()
        except OSError:
            continue
        if blob:
            blobs.setdefault(content_key(blob), blob)
    keys = list(blobs)
    if keys:
        cached = np.zeros(len(keys), dtype=bool)
        for cache in caches:
            cached |= cache.get(keys)[0]
        keys = [k for k, hit in zip(keys, cached, strict=True) if not hit]
    if not keys:
        return 0
    cfg = cfgs[0]
    models = [load_model(c.image_size, c.bf16, c.channels_last, c.tail) for c in cfgs]
    blocks = len(models[0]._blocks)  # no tail: every block is shared
    start = min((tail_first_block(c.tail) for c in cfgs if c.tail is not None), default=blocks)
    out = np.zeros((len(cfgs), len(keys), DIM), dtype=np.float32)
    bad: set[int] = set()
    decoders = shared_pool("moodboard-decode", cfg.decode_threads)

    def fill(i: int, buf: np.ndarray) -> None:
        try:
            decode_into(blobs[keys[i]], buf)
        except InputError:
            buf[...] = 0
            bad.add(i)

    def batch(first: int) -> None:
        import torch

        n = min(cfg.batch_size, len(keys) - first)
        buf = np.empty((n, cfg.image_size, cfg.image_size, 3), dtype=np.uint8)
        list(decoders.map(lambda j: fill(first + j, buf[j]), range(n)))
        with torch.inference_mode():
            maps = run_trunk(models[0], model_input(buf, cfg), start)
            for e, model in enumerate(models):
                out[e, first : first + n] = pooled(run_rest(model, maps, start))

    starts = list(range(0, len(keys), cfg.batch_size))
    run_batches(batch, starts, cfg.threads, cfg.parallel_batches, "moodboard-embed")
    good = [i for i in range(len(keys)) if i not in bad]
    for e, cache in enumerate(caches):
        cache.put([keys[i] for i in good], out[e, good])
    return len(good)
