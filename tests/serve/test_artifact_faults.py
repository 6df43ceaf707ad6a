"""A broken or hostile ``CURRENT`` never stops serving; the version metric is atomic.

A version that fails to load is loaded once, not every poll: the old version keeps serving
and ``/admin/reload`` says which version failed and why (503 with Retry-After). ``CURRENT``
must name a version inside ``artifacts/``.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from serving import api_client, serve_settings

from moodboard.build.artifact import prune_versions
from moodboard.ingest import Workspace
from moodboard.ingest.workspace import VERSION_FORMAT
from moodboard.serve.metrics import ServerMetrics
from moodboard.serve.registry import Engine


def _copy_version(ws: Workspace, version: str, later_s: int) -> str:
    """A copy of ``version`` under a newer version name, as a new build would make it."""
    name = (datetime.now(UTC) + timedelta(seconds=later_s)).strftime(VERSION_FORMAT)
    shutil.copytree(ws.artifacts_dir / version, ws.artifacts_dir / name)
    return name


def _wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_corrupt_version_is_loaded_once_and_the_old_one_keeps_serving(
    ws_copy: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str | None] = []
    real = Engine.load.__func__

    def counted(cls, ws, version=None, settings=None, **kw):
        loads.append(version)
        return real(cls, ws, version, settings, **kw)

    monkeypatch.setattr(Engine, "load", classmethod(counted))
    ws, good = ws_copy, ws_copy.current_artifact()
    bad = _copy_version(ws, good, later_s=1)
    (ws.artifacts_dir / bad / "products.parquet").write_bytes(b"secret-bytes " * 100)
    with api_client(ws.root, serve_settings(watch_interval_s=0.02)) as c:
        ws.set_current(bad)
        _wait_for(lambda: bad in loads)  # the watcher tried it
        time.sleep(0.3)  # fifteen more polls
        answers = [c.post("/admin/reload") for _ in range(3)]
        assert loads.count(bad) == 1
        assert "moodboard_artifact_load_failures_total 1.0" in c.get("/metrics").text
        for r in answers:
            assert r.status_code == 503
            assert int(r.headers["Retry-After"]) >= 1
            detail = r.json()["detail"]
            assert bad in detail and "failed to load" in detail
            assert f"Version {good} keeps serving" in detail
            assert "secret" not in detail and str(ws.root) not in detail
        assert c.get("/healthz").json()["artifact"] == good
        assert c.get("/search", params={"q": "shirt", "k": 3}).status_code == 200

        fixed = _copy_version(ws, good, later_s=2)  # the next build
        ws.set_current(fixed)
        _wait_for(lambda: c.get("/healthz").json()["artifact"] == fixed)
        assert c.post("/admin/reload").json() == {
            "artifact": fixed,
            "previous": fixed,
            "swapped": False,
        }
        assert loads.count(bad) == 1


def test_current_must_name_a_version_inside_artifacts(ws_copy: Workspace, tmp_path: Path) -> None:
    ws, good = ws_copy, ws_copy.current_artifact()
    outside = tmp_path / "outside" / "x"  # a complete artifact, outside the workspace
    shutil.copytree(ws.artifacts_dir / good, outside)
    link = (datetime.now(UTC) + timedelta(seconds=1)).strftime(VERSION_FORMAT)
    (ws.artifacts_dir / link).symlink_to(outside, target_is_directory=True)
    with api_client(ws.root) as c:
        for name, why in (
            ("../../outside/x", "not an artifact version name"),
            ("/etc", "not an artifact version name"),
            (link, "resolves outside"),
        ):
            (ws.root / "CURRENT").write_text(name + "\n")
            r = c.post("/admin/reload")
            assert r.status_code == 503, r.text
            assert why in r.json()["detail"]
            assert c.get("/healthz").json()["artifact"] == good
    (ws.root / "CURRENT").write_text("../../outside/x\n")
    with api_client(ws.root) as c:  # a server starts with a bad CURRENT, and says so
        assert c.get("/healthz").status_code == 503
        assert "not an artifact version name" in c.post("/admin/reload").json()["detail"]


def test_pruning_never_deletes_the_version_a_server_serves(ws_copy: Workspace) -> None:
    ws, served = ws_copy, ws_copy.current_artifact()
    newer = []
    for later_s in (1, 2, 3):  # three builds the server has not picked up (it does not poll)
        name = (datetime.now(UTC) + timedelta(seconds=later_s)).strftime(VERSION_FORMAT)
        (ws.artifacts_dir / name).mkdir()
        (ws.artifacts_dir / name / "manifest.json").write_text("{}")
        newer.append(name)
    with api_client(ws.root) as c:
        ws.set_current(newer[-1])
        assert prune_versions(ws, keep=1) == newer[:2]
        assert c.get("/healthz").json()["artifact"] == served
        assert c.get("/search", params={"q": "shirt", "k": 3}).status_code == 200
    assert prune_versions(ws, keep=1) == [served]  # the server stopped
    assert sorted(p.name for p in ws.artifacts_dir.iterdir()) == [newer[-1]]


def test_the_version_metric_names_one_version_under_concurrent_swaps() -> None:
    metrics = ServerMetrics()
    errors: list[Exception] = []
    most = [0]
    stop = threading.Event()

    def swap(t: int) -> None:
        for i in range(1000):
            try:
                metrics.set_version(f"v{t}-{i}")
            except Exception as e:  # the race under test (KeyError on landed code)
                errors.append(e)

    def scrape() -> None:
        while not stop.is_set():
            text = metrics.render().decode()
            most[0] = max(most[0], text.count("moodboard_artifact_info{"))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        scraper = threading.Thread(target=scrape)
        scraper.start()
        swappers = [threading.Thread(target=swap, args=(t,)) for t in range(4)]
        for t in swappers:
            t.start()
        for t in swappers:
            t.join()
        stop.set()
        scraper.join()
    finally:
        sys.setswitchinterval(interval)
    metrics.set_version("v-final")
    text = metrics.render().decode()
    assert errors == [] and most[0] <= 1
    assert [line for line in text.splitlines() if "moodboard_artifact_info{" in line] == [
        'moodboard_artifact_info{version="v-final"} 1.0'
    ]
