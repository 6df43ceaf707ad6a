"""Ingestion throughput: event rows per second from Parquet, CSV and JSONL into a workspace.

Target (issue 2): at least 50,000 event rows per second from Parquet on this machine.
Usage: ``python bench/ingest.py [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.ingest import Workspace, ingest_catalog, ingest_events


def _events(n: int, days: int = 14) -> pa.Table:
    rng = np.random.default_rng(0)
    ids = np.arange(n)
    secs = np.sort(rng.integers(0, days * 86_400, n))
    ts = (np.datetime64("2026-01-01") + secs.astype("timedelta64[s]")).astype("datetime64[us]")
    kind = rng.choice(["impression", "click", "save", "purchase"], n, p=[0.85, 0.1, 0.03, 0.02])
    return pa.table(
        {
            "event_id": pa.array([f"e{i}" for i in ids]),
            "ts": pa.array(ts),
            "user_id": pa.array([f"u{i}" for i in rng.integers(0, 50_000, n)]),
            "type": pa.array(kind),
            "item_id": pa.array([f"p{i}" for i in rng.integers(0, 10_000, n)]),
            "position": pa.array(rng.integers(1, 49, n).astype(np.int32)),
            "request_id": pa.array([f"r{i // 24}" for i in ids]),
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        table = _events(args.rows)
        pq.write_table(table, d / "events.parquet")
        pacsv.write_csv(table, d / "events.csv")
        with open(d / "events.jsonl", "w") as fh:
            for r in table.to_pylist():
                r["ts"] = r["ts"].isoformat()
                fh.write(json.dumps(r) + "\n")
        for fmt in ("parquet", "csv", "jsonl"):
            ws = Workspace(d / f"ws-{fmt}")
            ingest_catalog(
                ws,
                [
                    pa.table(
                        {
                            "id": [f"p{i}" for i in range(10_000)],
                            "title": [f"Product {i}" for i in range(10_000)],
                        }
                    )
                ],
            )
            t0 = time.perf_counter()
            first = ingest_events(ws, d / f"events.{fmt}")
            t1 = time.perf_counter()
            again = ingest_events(ws, d / f"events.{fmt}")
            t2 = time.perf_counter()
            assert first.stored == args.rows and again.new == 0
            rows.append(
                {
                    "format": fmt,
                    "rows": args.rows,
                    "seconds": round(t1 - t0, 2),
                    "rows_per_s": args.rows / (t1 - t0),
                    "rerun_rows_per_s": args.rows / (t2 - t1),
                }
            )
    report("ingest", rows, ["format", "rows", "seconds", "rows_per_s", "rerun_rows_per_s"])


if __name__ == "__main__":
    main()
