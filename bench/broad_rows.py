"""Broad queries' rows: composed vectors against encoded sub-queries, through the served chain.

A broad query's page starts with rows of sub-searches ("summer outfit" -> "summer outfit
dresses" within Dresses). ``surfaces.search.modules.sub_vectors`` says how a row's query vector
is made: ``compose`` (``unit(query + category name)``, the names' vectors kept) or ``encode``
(each sub-query through MiniLM). For the bench's ``/search`` queries (``bench/search.py``'s
mix) and its 80 broad ones (``bench/serve.py``), each asked once, the search surface of two
engines loaded from the same workspace, one per mode, runs on the model thread as the server
runs it. The table gives, per mode and query kind, the chain's milliseconds (p50, p99, mean)
and the mean time spent making the rows' vectors (``encode_modules``) and in ``dense/text``;
the last row compares the two modes' row vectors (mean and minimum cosine) and the share of
each row's first 24 ``dense/text`` items both find.

Usage: ``python bench/broad_rows.py [--workspace PATH] [--queries 300]``; without a workspace
as ``bench/serve.py`` (``moodboard-workspace`` when ``make demo`` built it, else a fresh one).
Needs ``MOODBOARD_DATASETS``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report
from search import _queries

from moodboard.config import load_settings
from moodboard.data import Request
from moodboard.serve.registry import Engine
from moodboard.surfaces import SurfaceResult
from moodboard.understand.threads import in_own_thread, model_thread
from serve import _broad_queries, _workspace

MODES = ("encode", "compose")
COLUMNS = ["mode", "queries", "asked", "with_rows", "p50_ms", "p99_ms", "mean_ms", "rows_ms",
           "dense_ms", "cos_mean", "cos_min", "top24_shared"]  # fmt: skip


def _engine(ws_root: Path, mode: str) -> Engine:
    os.environ["MOODBOARD_SURFACES__SEARCH__MODULES__SUB_VECTORS"] = mode
    try:
        from moodboard.ingest import Workspace

        return in_own_thread(Engine.load, Workspace(ws_root), settings=load_settings())
    finally:
        del os.environ["MOODBOARD_SURFACES__SEARCH__MODULES__SUB_VECTORS"]


def _run(engine: Engine, queries: list[str]) -> list[tuple[float, SurfaceResult]]:
    def go() -> list[tuple[float, SurfaceResult]]:
        for q in ("warm up", "summer look"):
            engine.search.run(Request(surface="search", query=q))
        out = []
        for q in queries:
            t0 = time.perf_counter()
            res = engine.search.run(Request(surface="search", query=q))
            out.append(((time.perf_counter() - t0) * 1e3, res))
        return out

    return model_thread().run(go)


def _row(mode: str, kind: str, runs: list[tuple[float, SurfaceResult]]) -> dict:
    ms = np.array([m for m, _ in runs])
    rows = [r for _, r in runs if r.prepared.context.get("modules")]
    return {
        "mode": mode,
        "queries": kind,
        "asked": len(runs),
        "with_rows": len(rows),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "rows_ms": float(np.mean([r.timings_ms.get("encode_modules", 0.0) for _, r in runs])),
        "dense_ms": float(np.mean([r.timings_ms.get("dense/text", 0.0) for _, r in runs])),
    }


def _agreement(engine: Engine, a: list, b: list) -> dict:
    """Row vectors of the two modes (same queries, same rows) and their first 24 items."""
    dense = engine.sources["dense/text"]
    cos, shared = [], []
    for (_, ra), (_, rb) in zip(a, b, strict=True):
        for m in ra.prepared.context.get("modules", ()):
            pa, pb = ra.prepared.lists[m.id]["dense/text"], rb.prepared.lists[m.id]["dense/text"]
            cos.append(float(pa.query.vector @ pb.query.vector))
            ia = set(dense(pa.query, 24).items.tolist())
            ib = dense(pb.query, 24).items.tolist()
            if ia:
                shared.append(len(ia.intersection(ib)) / len(ia))
    return {
        "mode": "compose vs encode",
        "queries": "rows of both",
        "asked": len(cos),
        "cos_mean": float(np.mean(cos)),
        "cos_min": float(np.min(cos)),
        "top24_shared": float(np.mean(shared)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace")
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = _workspace(args.workspace, tmp)
        kinds: dict[str, list[str]] = {}
        results: dict[str, dict[str, list]] = {}
        for mode in MODES:
            engine = _engine(ws.root, mode)
            if not kinds:
                kinds = {"search mix": _queries(engine.catalog, args.queries),
                         "broad": _broad_queries()}  # fmt: skip
            results[mode] = {kind: _run(engine, qs) for kind, qs in kinds.items()}
        rows = [_row(m, k, results[m][k]) for m in MODES for k in kinds]
        composed = [x for k in kinds for x in results["compose"][k]]
        encoded = [x for k in kinds for x in results["encode"][k]]
        rows.append(_agreement(engine, composed, encoded))
        for r in rows:
            for c in COLUMNS:
                r.setdefault(c, float("nan"))
        report("broad_rows", rows, COLUMNS)


if __name__ == "__main__":
    main()
