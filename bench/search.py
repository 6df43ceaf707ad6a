"""Search latency on the fashion catalog: index build times, and single-query p50/p99 of each
source and of the full chain (understand -> encode -> sources -> fuse -> boost).

Usage: ``python bench/search.py [--queries 300]``; needs ``MOODBOARD_DATASETS``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.build import build
from moodboard.data import Catalog, Request
from moodboard.datasets import ingest_dataset, load_wands_queries
from moodboard.ingest import Workspace
from moodboard.retrieve import SourceQuery
from moodboard.serve.registry import Engine


def _queries(catalog: Catalog, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    titles = [t for t in catalog.title if t]
    mine = [" ".join(t.lower().split()[-3:]) for t in rng.choice(titles, n // 2, replace=False)]
    wands = load_wands_queries()["query"].astype(str).tolist()
    return mine + list(rng.choice(wands, n - len(mine), replace=False))


def _pct(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 99))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ingest_dataset(ws, "fashion")
        manifest = build(ws)
        engine = Engine.load(ws)
        rows = [
            {
                "what": f"build {k}",
                "items": len(engine.catalog),
                "p50_ms": v * 1e3,
                "p99_ms": v * 1e3,
            }
            for k, v in manifest["timings_s"].items()
        ]
        queries = _queries(engine.catalog, args.queries)
        engine.search(Request(surface="search", query=queries[0]))  # warm the model
        per: dict[str, list[float]] = {}
        for q in queries:
            t0 = time.perf_counter()
            parsed = engine.understand(q)
            per.setdefault("understand", []).append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            vec = engine.text_encoder.encode([parsed.text or q])[0]
            per.setdefault("text encode (1 query)", []).append((time.perf_counter() - t0) * 1e3)
            for name in ("lexical/bm25", "dense/text", "visual/image", "popular/trending"):
                src = engine.sources.get(name)
                if src is None:
                    continue
                v = (
                    vec
                    if name == "dense/text"
                    else (src.vectors[0] if name == "visual/image" else None)
                )
                t0 = time.perf_counter()
                src(SourceQuery(text=parsed.text or q, vector=v), 200)
                per.setdefault(f"source {name} (k=200)", []).append(
                    (time.perf_counter() - t0) * 1e3
                )
            t0 = time.perf_counter()
            engine.search(Request(surface="search", query=q, k=24))
            per.setdefault("full search chain", []).append((time.perf_counter() - t0) * 1e3)
        for what, xs in per.items():
            p50, p99 = _pct(xs)
            rows.append({"what": what, "items": len(engine.catalog), "p50_ms": p50, "p99_ms": p99})
    report("search", rows, ["what", "items", "p50_ms", "p99_ms"])


if __name__ == "__main__":
    main()
