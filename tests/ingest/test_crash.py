"""A killed ingestion leaves a readable workspace; a rerun completes it without duplicates."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.ingest import Workspace, ingest_catalog

#: A quarter of the million rows this test first used (the same 10% duplicates, the same 50
#: chunks of ``CHUNK`` rows): the kill still lands midway, in a quarter of the time.
N_ROWS = 250_000
N_UNIQUE = 225_000
CHUNK = N_ROWS // 50


def _events_file(path: Path) -> None:
    rng = np.random.default_rng(7)
    ids = np.concatenate([np.arange(N_UNIQUE), rng.integers(0, N_UNIQUE, N_ROWS - N_UNIQUE)])
    rng.shuffle(ids)
    ts = (np.datetime64("2026-01-01") + ids.astype("timedelta64[s]")).astype("datetime64[us]")
    pq.write_table(
        pa.table(
            {
                "event_id": pa.array([f"e{i}" for i in ids]),
                "ts": pa.array(ts),
                "user_id": pa.array([f"u{i % 5000}" for i in ids]),
                "type": pa.array(np.where(ids % 10 == 0, "click", "impression").tolist()),
                "item_id": pa.array([f"p{i % 1000}" for i in ids]),
                "position": pa.array((ids % 24 + 1).astype(np.int32)),
                "request_id": pa.array([f"r{i // 24}" for i in ids]),
            }
        ),
        path,
    )


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "moodboard.cli", *args]


def test_sigkill_midway_then_rerun_stores_each_unique_event_once(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ingest_catalog(
        ws,
        [
            pa.table(
                {
                    "id": [f"p{i}" for i in range(1000)],
                    "title": [f"Product {i}" for i in range(1000)],
                }
            )
        ],
    )
    src = tmp_path / "events.parquet"
    _events_file(src)
    cmd = _cli(
        "ingest",
        "events",
        str(src),
        "--workspace",
        str(ws.root),
        "--json",
        "--chunk-rows",
        str(CHUNK),
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline and len(list((ws.root / "events").glob("day=*/*.parquet"))) < 8
    ):
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingestion finished before it could be killed"

    with duckdb.connect() as con:  # the killed workspace is readable and holds part of the file
        partial = con.execute(
            f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet('{ws.events.glob()}')"
        ).fetchone()
    assert 0 < partial[0] < N_UNIQUE and partial[0] == partial[1]

    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert f'"read": {N_ROWS}' in done.stdout
    with duckdb.connect() as con:
        total, unique = con.execute(
            f"SELECT count(*), count(DISTINCT event_id) FROM read_parquet('{ws.events.glob()}')"
        ).fetchone()
    assert (total, unique) == (N_UNIQUE, N_UNIQUE)
    assert not list((ws.root / "events").glob("day=*/.*.tmp"))
    assert ws.status()["events_total"] == N_UNIQUE
