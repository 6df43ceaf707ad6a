"""Text to image and composed queries: the head's build time, ``dense/text_image`` per query,
the search chain with and without it, and ``/visual-search``'s chain for a photo alone and a
photo with words, single-query p50/p99, on a built workspace's live version.

Usage: ``python bench/text_image.py --workspace <built workspace> [--queries 200]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.data import Request
from moodboard.ingest import Workspace
from moodboard.retrieve import SourceQuery
from moodboard.serve.registry import Engine
from moodboard.surfaces import build_surface

COLOURS = ("red", "black", "navy blue", "white", "green", "pink")


def _pct(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 99))


def _timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    engine = Engine.load(Workspace(args.workspace))
    n = len(engine.catalog)
    timings = engine.manifest["timings_s"]
    rows = [
        {"what": "build dense/text_image (train + save)", "items": n,
         "p50_ms": timings.get("dense_text_image", float("nan")) * 1e3, "p99_ms": float("nan")}
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    picked = rng.choice(np.flatnonzero(engine.has_images()), args.queries, replace=False)
    queries = [" ".join((engine.catalog.title[i] or "").lower().split()[-3:]) for i in picked]
    search = engine.search
    env = search.env
    cfg = env.config.model_copy(
        update={"sources": tuple(s for s in env.config.sources if s != "dense/text_image")}
    )
    without = build_surface("search", cfg, env.catalog, env.sources, env.seed, env.resources)
    without = without.with_rank(search.rank)
    head = engine.sources["dense/text_image"]
    photos = [Path(engine.catalog.image[i]).read_bytes() for i in picked]
    engine.visual.run(Request(surface="visual", image=photos[0], query="red"))  # warm up
    search.run(Request(surface="search", query=queries[0]))
    per: dict[str, list[float]] = {}
    for j, q in enumerate(queries):
        vec = env.resources["encode"]([q])[0]
        per.setdefault("source dense/text_image (k=200)", []).append(
            _timed(head, SourceQuery(vector=vec), 200)
        )
        per.setdefault("source dense/text (k=200)", []).append(
            _timed(engine.sources["dense/text"], SourceQuery(vector=vec), 200)
        )
        req = Request(surface="search", query=q, k=24)
        per.setdefault("search chain, with dense/text_image", []).append(_timed(search.run, req))
        per.setdefault("search chain, without it", []).append(_timed(without.run, req))
        photo = Request(surface="visual", image=photos[j], k=24)
        per.setdefault("visual chain, photo alone", []).append(_timed(engine.visual.run, photo))
        words = Request(surface="visual", image=photos[j], query=COLOURS[j % 6], k=24)
        per.setdefault("visual chain, photo + colour", []).append(_timed(engine.visual.run, words))
    for what, xs in per.items():
        p50, p99 = _pct(xs)
        rows.append({"what": what, "items": n, "p50_ms": p50, "p99_ms": p99})
    report("text_image", rows, ["what", "items", "p50_ms", "p99_ms"])


if __name__ == "__main__":
    main()
