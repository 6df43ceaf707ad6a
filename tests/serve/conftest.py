"""The serving tests' workspaces: private, writable copies of the mini engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mini import copy_workspace
from moodboard.ingest import Workspace


@pytest.fixture(scope="module")
def served_ws(mini_engine: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A copy of the mini engine that one test module's servers may write to (events, boards,
    new builds: pass ``mini.mini_settings()`` to a rebuild)."""
    return copy_workspace(mini_engine, tmp_path_factory.mktemp("served") / "ws")


@pytest.fixture
def ws_copy(mini_engine: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the mini engine for one test that changes it."""
    return copy_workspace(mini_engine, tmp_path / "ws")
