"""Shared fixtures: the real datasets folder, fresh workspaces and the mini engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mini import build_mini, fingerprint
from moodboard.ingest import Workspace


@pytest.fixture(scope="session")
def datasets_root() -> Path:
    """``$MOODBOARD_DATASETS``: required in CI, skipped locally when unset."""
    root = os.environ.get("MOODBOARD_DATASETS")
    if not root or not Path(root).is_dir():
        msg = "MOODBOARD_DATASETS is not set to the shared datasets folder"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI must run the real-data tests)")
        pytest.skip(msg)
    return Path(root)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """An empty, initialized workspace."""
    return Workspace(tmp_path / "ws").init()


_BUILT: dict[Path, dict[str, tuple[int, int]]] = {}  # the mini engine's files when built


@pytest.fixture(scope="session")
def mini_engine(datasets_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The mini engine (``tests/mini.py``), built once per session. Read-only: a test that
    changes it fails; copy it with ``mini.copy_workspace`` first."""
    ws = build_mini(tmp_path_factory.mktemp("mini") / "ws")
    _BUILT[ws.root] = fingerprint(ws)
    return ws


@pytest.fixture(autouse=True)
def _mini_engine_is_read_only(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that wrote into the shared mini engine."""
    yield
    if "mini_engine" not in request.fixturenames:
        return
    ws = request.getfixturevalue("mini_engine")
    before, after = _BUILT[ws.root], fingerprint(ws)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, (
        f"{request.node.nodeid} changed the shared mini engine ({changed[:5]}): "
        "write to a copy (mini.copy_workspace) instead"
    )
