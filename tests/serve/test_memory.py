"""The worst single requests keep `moodboard serve`'s memory growth under 200 MB each.

The server runs as a subprocess over the built workspace; for each request the peak resident
set (``VmHWM``) is reset through ``/proc/<pid>/clear_refs`` just before it, and its growth over
the resident set before it (``VmRSS``) is the request's cost. On the landed tree a deep cursor
cost 1.7 GB, a 9400 x 9400 PNG 680 MB and 8,000 distinct event keys 3.1 GB.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from serving import auth_headers, serve_process

from moodboard.ingest import Workspace

LIMIT_MB = 200


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _can_reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def server(
    served_ws: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    log = tmp_path_factory.mktemp("memory-log") / "server.log"
    with serve_process(served_ws.root, log) as (base, pid):
        if not _can_reset_peak(pid):
            pytest.skip("cannot write /proc/<pid>/clear_refs (needs root or the same user)")
        yield base, pid


def send(base: str, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request to the server (the one place to add credentials)."""
    return httpx.request(method, f"{base}{path}", timeout=60, headers=auth_headers("admin"), **kw)


def _growth_mb(pid: int, base: str, method: str, path: str, **kw: Any) -> tuple[float, int]:
    """The request's status and the growth of the server's peak RSS over its RSS before."""
    before = _kb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak := current
    status = send(base, method, path, **kw).status_code
    return (_kb(pid, "VmHWM") - before) / 1024, status


def _png_9400() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (9400, 9400)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _many_keys(n: int = 10_000) -> dict[str, Any]:
    item = "15970"
    return {
        "events": [
            {"user_id": f"u{i % 50}", "type": "click", "item_id": item, f"key_{i}": i}
            for i in range(n)
        ]
    }


def test_the_worst_requests_grow_memory_by_less_than_200_mb(
    server: tuple[str, int], served_ws: Workspace
) -> None:
    base, pid = server
    item = send(base, "GET", "/popular", params={"k": 1}).json()["items"][0]["id"]
    board = send(base, "POST", "/boards", json={"user_id": "mem"}).json()["id"]
    send(base, "POST", f"/boards/{board}/items", json={"item_id": item})
    small = io.BytesIO()
    Image.new("RGB", (300, 300), "red").save(small, "JPEG")
    warm = [  # load what every route loads once (models, indexes) before measuring
        ("GET", f"/related/{item}", {"params": {"k": 24}}),
        ("GET", f"/boards/{board}/ideas", {"params": {"k": 24}}),
        ("POST", "/visual-search", {"files": {"image": ("s.jpg", small.getvalue())}}),
        ("POST", "/events", {"json": {"events": [{"user_id": "u", "type": "click",
                                                   "item_id": item}]}}),
    ]  # fmt: skip
    for method, path, kw in warm:
        assert send(base, method, path, **kw).status_code < 300, path
    deep = {"cursor": "50000000", "k": 1}
    worst = {
        "deep cursor on /related": ("GET", f"/related/{item}", {"params": deep}),
        "deep cursor on board ideas": ("GET", f"/boards/{board}/ideas", {"params": deep}),
        "9400 x 9400 PNG": ("POST", "/visual-search", {"files": {"image": ("b.png", _png_9400())}}),
        "10,000 events, 10,000 keys": ("POST", "/events", {"json": _many_keys()}),
    }
    grown = {}
    for name, (method, path, kw) in worst.items():
        mb, status = _growth_mb(pid, base, method, path, **kw)
        assert status < 500, (name, status)
        grown[name] = round(mb, 1)
    assert all(mb < LIMIT_MB for mb in grown.values()), grown
