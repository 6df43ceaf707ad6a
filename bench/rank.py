"""Rank-stage latency: ``rank/multihead`` scoring one user's 300 candidates, p50 and p99.

A model of the default configuration (32-d embeddings, the newest 32 actions, 4 experts) is
trained briefly on seeded synthetic rows over a catalog of 44,000 items with 384-d content
vectors (the size of the fashion catalog's text vectors); latency does not depend on what it
learned. Each call is the whole stage: the inputs callable (here a prebuilt page: building the
inputs from a request is the prepare step's cost), the five calibrated heads, the utility and
the sort. Target (issue 12): under 5 ms for 300 candidates on this machine.

Torch runs on one thread by default, as the server does (``serve.torch_threads``); the
``load`` column is the machine's 1-minute load average after each row (a shared machine with
load above its 2 cores gives slower figures than the model's own) and ``cpu_ms`` the CPU time
this process spent per call (what the call costs whatever its neighbours do).

Usage: ``python bench/rank.py [--candidates 300] [--calls 500] [--threads 1 2]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.data import Candidates
from moodboard.rank import (
    MULTIHEAD,
    MultiHeadConfig,
    MultiHeadModel,
    MultiHeadRanker,
    RankQuery,
    make_ranker,
)
from moodboard.rank.synthetic import make_engagement

COLUMNS = [
    "model",
    "threads",
    "candidates",
    "history",
    "p50_ms",
    "p99_ms",
    "mean_ms",
    "cpu_ms",
    "load",
]


def _page(inputs: Any, n: int) -> Any:
    """One user's page: the longest history's row and dense features, ``n`` candidates."""
    row = int(np.argmax((inputs.history_actions > 0).sum(1)))
    return inputs.take(np.full(n, row, dtype=np.int64))


def _measure(ranker: MultiHeadRanker, page: Any, calls: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    items = np.arange(len(page.item), dtype=np.int64) * 131 % ranker.n_items
    page = replace(page, item=items)
    model = MultiHeadModel(ranker, lambda query, cand: page)
    stage = make_ranker(MULTIHEAD, resources={MULTIHEAD: model})
    cand = Candidates.from_scores(items, np.linspace(1.0, 0.0, len(items)), "dense/text")
    query = RankQuery(user="u1", request_id="r1")
    for _ in range(20):
        stage(cand, query)
    times = []
    cpu0 = time.process_time()
    for _ in range(calls):
        t0 = time.perf_counter()
        stage(cand, query)
        times.append((time.perf_counter() - t0) * 1000)
    cpu = (time.process_time() - cpu0) * 1000 / calls
    t = np.asarray(times)
    return {
        "cpu_ms": cpu,
        "p50_ms": float(np.percentile(t, 50)),
        "p99_ms": float(np.percentile(t, 99)),
        "mean_ms": float(t.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    args = ap.parse_args()
    cfg = MultiHeadConfig()
    data = make_engagement(
        4000, n_items=44_000, n_categories=40, history=cfg.max_history, content_dim=384, seed=0
    )
    rows = []
    for name, sequence in (("multihead", True), ("multihead no_sequence", False)):
        ranker = MultiHeadRanker(cfg.model_copy(update={"sequence": sequence, "epochs": 2}))
        ranker.fit(data.inputs, data.content)
        page = _page(data.inputs, args.candidates)
        for threads in args.threads:
            rows.append(
                {
                    "model": name,
                    "threads": threads,
                    "candidates": args.candidates,
                    "history": int((page.history_actions[0] > 0).sum()),
                    **_measure(ranker, page, args.calls, threads),
                    # the machine's 1-minute load average after the run (2 cores: > 1 is busy)
                    "load": os.getloadavg()[0],
                }
            )
    report("rank", rows, COLUMNS)


if __name__ == "__main__":
    main()
