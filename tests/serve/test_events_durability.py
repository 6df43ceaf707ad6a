"""POST /events is durable: a server killed with SIGKILL after answering loses no event."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import duckdb
import httpx
import pyarrow as pa
import pytest

from moodboard.ingest import Workspace, ingest_catalog

ITEMS = [f"p{i}" for i in range(50)]
WRITE_KEY = "durability-write-key"
N_EVENTS, BATCH, THREADS = 5_000, 100, 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(ws: Workspace, log: IO[bytes], cwd: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "moodboard.cli", "serve", "--workspace", str(ws.root)]
    env = {**os.environ, "MOODBOARD_SERVE__WRITE_KEY": WRITE_KEY}
    proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=log, stderr=log, cwd=cwd, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}; see {log.name}")
        try:
            httpx.get(f"{url}/healthz", timeout=2)  # 503 without an artifact: it is up
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the server did not answer within 180 s; see {log.name}")


def _post_all(url: str) -> list[str]:
    acked: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        auth = {"Authorization": f"Bearer {WRITE_KEY}"}
        with httpx.Client(base_url=url, timeout=60, headers=auth) as client:
            for b in range(t, N_EVENTS // BATCH, THREADS):
                events = [
                    {
                        "user_id": f"u{b % 13}",
                        "type": "click",
                        "item_id": ITEMS[(b + i) % len(ITEMS)],
                        "position": i % 24 + 1,
                        **({"event_id": f"mine-{b}-{i}"} if b % 2 else {}),
                    }
                    for i in range(BATCH)
                ]
                r = client.post("/events", json={"events": events})
                with lock:
                    if r.status_code == 200:
                        acked.extend(r.json()["event_ids"])
                    else:
                        failures.append(f"{r.status_code} {r.text[:300]}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures, failures[:3]
    return acked


def _logged_ids(ws: Workspace) -> list[str]:
    """The event ids in the Parquet event log only (not the WAL)."""
    if not ws.events.files():
        return []
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT event_id FROM read_parquet('{ws.events.glob()}')").fetchall()
    return [r[0] for r in rows]


def test_events_acknowledged_before_a_sigkill_are_in_the_log_after_restart(
    tmp_path: Path,
) -> None:
    ws = Workspace(tmp_path / "ws")
    ingest_catalog(ws, [pa.table({"id": ITEMS, "title": [f"Item {i}" for i in ITEMS]})])
    with open(tmp_path / "server.log", "wb") as log:
        proc, url = _start(ws, log, tmp_path)
        try:
            acked = _post_all(url)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert len(acked) == len(set(acked)) == N_EVENTS

        proc, url = _start(ws, log, tmp_path)  # opening the WAL stores what the kill left
        try:
            stored = _logged_ids(ws)
        finally:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert len(stored) == len(set(stored)) == N_EVENTS
    assert set(stored) == set(acked)
