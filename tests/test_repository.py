"""The repository carries code, not the shared datasets."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [ROOT / p for p in out.stdout.decode().split("\0") if p]


def test_no_large_or_data_files_are_tracked() -> None:
    files = _tracked()
    assert files, "not a git checkout"
    big = [str(p) for p in files if p.exists() and p.stat().st_size > 1_000_000]
    assert not big
    data = [p for p in files if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".parquet"}]
    assert len(data) <= 5, data


def test_nothing_under_shared_datasets_is_copied_into_the_repo() -> None:
    root = os.environ.get("MOODBOARD_DATASETS")
    if not root:
        pytest.skip("MOODBOARD_DATASETS is not set")
    sizes = {p.stat().st_size for p in _tracked() if p.exists()}
    for p in Path(root).rglob("*"):
        if p.is_file() and p.stat().st_size in sizes and p.stat().st_size > 512:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            for q in _tracked():
                if q.exists() and q.stat().st_size == p.stat().st_size:
                    assert hashlib.sha256(q.read_bytes()).hexdigest() != digest, (p, q)
