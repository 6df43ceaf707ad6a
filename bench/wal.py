"""Event WAL compaction on a big day: what one compaction costs, and how long it stalls threads.

A server logs every page it serves as impressions; the WAL moves them into the Parquet log
every few seconds, deduplicated by ``event_id`` against the ids of the days they fall on.
This bench fills today's log with ``--stored`` events in ``--files`` part files (a busy day),
then logs ``--batch`` impressions and compacts, ``--rounds`` times, two ways:

- ``kept``: the WAL as it serves, holding the stored ids between compactions (``SeenIds``);
- ``re-read``: every compaction reads the day's ids from its files again (the old way).

``stall_ms`` is the longest a 1 ms ticker thread waited during the compactions: how long a
request thread could be held up (the GIL, the disk). Usage:
``python bench/wal.py [--stored 1200000] [--files 200] [--batch 7000] [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from _common import report

from moodboard.config import WALConfig
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.ingest.eventlog import EVENT_SCHEMA
from moodboard.ingest.wal import EventWAL

ITEMS = 5_000


def _fill(ws: Workspace, stored: int, files: int, rng: np.random.Generator) -> None:
    """Today's log: ``stored`` impressions in ``files`` part files."""
    today = np.datetime64(datetime.now(UTC).date(), "us")
    per = stored // files
    for f in range(files):
        secs = np.sort(rng.integers(0, 60 * 60, per))
        ts = today + secs.astype("timedelta64[s]")
        cols = {
            "event_id": [uuid.uuid4().hex for _ in range(per)],
            "ts": ts,
            "user_id": [f"u{u}" for u in rng.integers(0, 20_000, per)],
            "type": ["impression"] * per,
            "item_id": [f"p{i}" for i in rng.integers(0, ITEMS, per)],
            "surface": ["search"] * per,
            "position": rng.integers(1, 25, per),
            "request_id": [f"r{f}-{i // 24}" for i in range(per)],
        }
        ws.events.append(
            pa.table(
                [pa.array(cols.get(f.name, [None] * per), f.type) for f in EVENT_SCHEMA],
                schema=EVENT_SCHEMA,
            )
        )


def _run(ws: Workspace, mode: str, batch: int, rounds: int, rng: np.random.Generator) -> dict:
    wal = EventWAL(ws, WALConfig(background=False)).open()
    stall, stop = [0.0], threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            stall[0] = max(stall[0], now - last)
            last = now

    ms = []
    try:
        for r in range(rounds):
            users, items = rng.integers(0, 20_000, batch), rng.integers(0, ITEMS, batch)
            wal.log(
                [
                    {
                        "user_id": f"u{users[n]}",
                        "type": "impression",
                        "item_id": f"p{items[n]}",
                        "surface": "search",
                        "position": n % 24 + 1,
                        "request_id": f"{mode}-{r}-{n // 24}",
                    }
                    for n in range(batch)
                ]
            )
            if mode == "re-read":
                wal._seen = None  # the old way: a new SeenIds per compaction
            ticker = threading.Thread(target=tick, daemon=True)
            stop.clear()
            ticker.start()
            t0 = time.perf_counter()
            wal.compact()
            ms.append((time.perf_counter() - t0) * 1000)
            stop.set()
            ticker.join()
    finally:
        wal.close()
    first, rest = ms[0], np.asarray(ms[1:])
    return {
        "mode": mode,
        "files": len(ws.events.files()),
        "first_ms": first,
        "p50_ms": float(np.percentile(rest, 50)),
        "max_ms": float(rest.max()),
        "stall_ms": stall[0] * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--stored", type=int, default=1_200_000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--batch", type=int, default=7_000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for mode in ("re-read", "kept"):
        with tempfile.TemporaryDirectory() as tmp:
            ws = Workspace(Path(tmp) / "ws")
            ids = [f"p{i}" for i in range(ITEMS)]
            ingest_catalog(ws, [pa.table({"id": ids, "title": [f"Product {i}" for i in ids]})])
            _fill(ws, args.stored, args.files, rng)
            rows.append(_run(ws, mode, args.batch, args.rounds, rng) | {"events": args.stored})
    cols = ["mode", "events", "files", "first_ms", "p50_ms", "max_ms", "stall_ms"]
    report("wal", rows, cols)


if __name__ == "__main__":
    main()
