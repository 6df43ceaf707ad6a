"""Shared fixtures: the real datasets folder and fresh workspaces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
