"""Search analytics and personalized search on built workspaces.

- ``--workspace W``: the time ``moodboard analyze search`` takes on W's event log (DuckDB),
  best of ``--runs``, with the searches it read.
- ``--arms DIR``: the kept arms of ``moodboard simulate --through-engine --arm personal=...
  --arm control= --arms-dir DIR``: clicks and purchases on search pages per search session of
  each arm since ``--since``, and the difference of the treatment with the control (``--arm
  personal control``) with its 95% paired interval over shoppers (the arms share their
  shoppers and their search sessions).

Usage: ``python bench/search_analytics.py --workspace W [--arms DIR --since 2026-01-12]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.experiment.search_analytics import analyze_search
from moodboard.ingest import Workspace
from moodboard.simulate.compare import PairedStats


def _timing(root: Path, runs: int) -> dict:
    best, result = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = analyze_search(Workspace(root))
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    return {"what": "analyze search", "searches": result.totals["searches"], "seconds": best}


def _per_user(root: Path, since: str) -> pd.DataFrame:
    glob = str(root / "events" / "*" / "*.parquet")
    sql = """
    with e as (select distinct on (event_id) * from read_parquet(?, hive_partitioning = false)
               where ts >= cast(? as timestamp))
    select user_id,
      count(*) filter (where type = 'search') as searches,
      count(*) filter (where type = 'click' and surface = 'search') as clicks,
      count(*) filter (where type = 'purchase' and surface = 'search') as purchases
    from e group by user_id"""
    return duckdb.connect().execute(sql, [glob, since]).df().set_index("user_id")


def _arms(folder: Path, names: list[str], since: str) -> list[dict]:
    arms = [folder / n for n in names]
    frames = {p.name: _per_user(p, since) for p in arms}
    users = sorted(set().union(*(f.index for f in frames.values())))
    frames = {k: f.reindex(users, fill_value=0) for k, f in frames.items()}
    first, last = frames[arms[0].name], frames[arms[-1].name]
    if not (first.searches == last.searches).all():
        raise SystemExit("The arms' search sessions differ: not a paired simulation.")
    n = int(first.searches.sum())
    rows = []
    for metric in ("clicks", "purchases"):
        a = first[metric].to_numpy(np.float64) * len(users) / n
        b = last[metric].to_numpy(np.float64) * len(users) / n
        st = PairedStats.of(a, b)
        lo, hi = st.interval()
        rows.append({
            "what": f"{metric} per search session",
            "searches": n,
            arms[0].name: f"{a.mean():.4f}",
            arms[-1].name: f"{b.mean():.4f}",
            "difference": f"{st.mean:+.4f} [{lo:+.4f}, {hi:+.4f}]",
        })  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--arms", type=Path)
    ap.add_argument("--since", default="2026-01-12")
    ap.add_argument("--arm", nargs=2, default=["personal", "control"], help="TREATMENT CONTROL")
    args = ap.parse_args()
    if args.workspace is not None:
        report("search_analytics", [_timing(args.workspace, args.runs)],
               ["what", "searches", "seconds"])  # fmt: skip
    if args.arms is not None:
        rows = _arms(args.arms, args.arm, args.since)
        report("personal_search", rows, list(rows[0]))


if __name__ == "__main__":
    main()
