"""``GET /refinements`` latency over HTTP at concurrency 1 (target: p99 under 60 ms), with the
median of each stage (the search chain, the walks, the chips) the answers report.

Each query is asked alone (first time: the encoder embeds it) and then after a ``/search``
of the same query, as the search page asks them (its vector is cached by then). Queries: half
logged searches of the workspace (walks from a known node), half catalog phrases and WANDS
queries (mostly unknown to the log: seeds from shared words, catalog-phrase fallback). Starts
``moodboard serve`` on 127.0.0.1 (``bench/serve.py``'s helpers).

Usage: ``python bench/refinements.py --workspace PATH [--requests 200]``; the workspace needs a
build with ``refinements/graph`` (``moodboard demo --no-serve`` makes one). Needs
``MOODBOARD_DATASETS``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import report
from search import _queries

from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from serve import HOST, _free_port, _row, _serve


def _logged(ws: Workspace, n: int) -> list[str]:
    """``n`` logged search queries, drawn by their frequency (seeded)."""
    rows = duckdb.sql(
        "SELECT query FROM read_parquet(?, union_by_name = true) "
        "WHERE type = 'search' AND query IS NOT NULL",
        params=[ws.events.glob()],
    ).fetchall()
    rng = np.random.default_rng(0)
    return [str(q) for q in rng.choice([r[0] for r in rows], n)]


def _measure(c: httpx.Client, queries: list[str], after_search: bool, what: str) -> dict:
    """Latency of ``/refinements`` for each query (after a ``/search`` of the same query, as
    the search page asks them, when ``after_search``: its query vector is then cached)."""
    lat: list[float] = []
    stages: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {"chips": [], "related": []}
    errors = 0
    t_all = time.perf_counter()
    for i, q in enumerate(queries):
        params = {"q": q, "user": f"bench-{i % 50}"}
        if after_search:
            c.get("/search", params=params)
        t0 = time.perf_counter()
        r = c.get("/refinements", params=params)
        lat.append((time.perf_counter() - t0) * 1e3)
        errors += r.status_code != 200
        if r.status_code == 200:
            body = r.json()
            for k, v in body["timings_ms"].items():
                stages.setdefault(k, []).append(v)
            counts["chips"].append(len(body["chips"]))
            counts["related"].append(len(body["related_searches"]))
    what += " after /search" if after_search else " alone"
    row = _row(what, 1, lat, time.perf_counter() - t_all, errors)
    row |= {f"{k}_p50_ms": float(np.median(v)) for k, v in stages.items()}
    return row | {f"{k}_mean": float(np.mean(v)) for k, v in counts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    engine = Engine.load(ws)
    if "refinements/graph" not in engine.manifest["components"]:
        raise SystemExit(f"{ws.root} has no refinements/graph: rebuild it with this moodboard")
    n = args.requests
    mixes = {
        "logged queries": _logged(ws, n),
        "catalog phrases + WANDS": _queries(engine.catalog, n),
    }
    del engine
    port = _free_port()
    proc = _serve(ws, port)
    rows = []
    try:
        base = f"http://{HOST}:{port}"
        with httpx.Client(base_url=base, timeout=60) as c:
            for name, queries in mixes.items():
                for q in queries[:10]:  # warm up: the model, the first pages
                    c.get("/refinements", params={"q": q})
                for after_search in (False, True):
                    rows.append(_measure(c, queries, after_search, f"/refinements ({name})"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    cols = ["what", "requests", "p50_ms", "p99_ms", "errors", "encode_p50_ms", "search_p50_ms",
            "related_p50_ms", "chips_p50_ms", "chips_mean", "related_mean"]  # fmt: skip
    print(report("refinements", rows, cols))


if __name__ == "__main__":
    main()
