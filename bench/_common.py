"""Shared helpers of the benchmark scripts: a results table and a JSON file per run, and a
scratch copy of a workspace for a bench's server."""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def report(name: str, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """Print rows as a table and write them with the machine's description to JSON."""
    table = Table(title=name)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(f"{r[c]:,.1f}" if isinstance(r[c], float) else str(r[c]) for c in columns))
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), "rows": rows}, indent=2))
    return path


def scratch_copy(root: Path) -> Path:
    """A copy of the workspace at ``root`` in a temporary folder, removed when the bench exits.

    A bench's server serves the copy, so the impressions and search log of its synthetic
    traffic never reach the workspace: they would be learned from by its next build, and
    their timestamps (now) would stop ``moodboard simulate`` from adding days to it.
    """
    scratch = Path(tempfile.mkdtemp(prefix="moodboard-bench-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    copy = scratch / Path(root).name
    shutil.copytree(root, copy, symlinks=True)
    return copy
