"""A small built workspace on the real fashion catalog, shared by the serving tests."""

from __future__ import annotations

import shutil

import pytest

from moodboard.build import build
from moodboard.config import SimulateSettings
from moodboard.datasets import load_fashion
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.simulate import run_simulation

TYPES = ("Shirts", "Tshirts", "Jeans", "Dresses", "Handbags", "Watches", "Heels", "Kurtas")


@pytest.fixture(scope="session")
def served_ws(datasets_root, tmp_path_factory) -> Workspace:
    """800 products, 100 of each of eight article types, 80 simulated shoppers, one build."""
    t = load_fashion().products
    seen: dict[str, int] = {}
    keep = []
    for i, a in enumerate(t.column("articleType").to_pylist()):
        if a in TYPES and seen.get(a, 0) < 100:
            seen[a] = seen.get(a, 0) + 1
            keep.append(i)
    ws = Workspace(tmp_path_factory.mktemp("served") / "ws")
    assert ingest_catalog(ws, [t.take(keep)]).quarantined == 0
    run_simulation(ws, SimulateSettings(users=80, days=2))
    build(ws)
    return ws


@pytest.fixture
def ws_copy(served_ws: Workspace, tmp_path) -> Workspace:
    """A private copy of ``served_ws`` (its database and live artifact), for tests that
    change it."""
    ws = Workspace(tmp_path / "ws")
    version = served_ws.current_artifact()
    assert version is not None
    ws.artifacts_dir.mkdir(parents=True)
    shutil.copytree(served_ws.artifacts_dir / version, ws.artifacts_dir / version)
    shutil.copy2(served_ws.db_path, ws.db_path)
    shutil.copy2(served_ws.root / "CURRENT", ws.root / "CURRENT")
    return ws.init()
