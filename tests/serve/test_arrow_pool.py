"""The server's Arrow memory pool is the one its settings name (``serve.arrow_memory_pool``).

With pyarrow's default (mimalloc in pyarrow 26), every request's model work ran slower while
the event WAL compacted in the background (README, Benchmarks); the server uses jemalloc.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest
from serving import api_client, serve_settings

from moodboard.ingest import Workspace


@pytest.fixture
def restore_pool() -> Iterator[None]:
    before = pa.default_memory_pool()
    yield
    pa.set_memory_pool(before)


@pytest.mark.parametrize(("setting", "backend"), [(None, "jemalloc"), ("system", "system")])
def test_the_server_allocates_arrow_memory_from_the_configured_pool(
    tmp_path, restore_pool: None, setting: str | None, backend: str
) -> None:
    ws = Workspace(tmp_path / "ws").init()
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    settings = serve_settings() if setting is None else serve_settings(arrow_memory_pool=setting)
    with api_client(ws.root, settings) as c:
        assert c.get("/healthz").status_code == 503  # no build yet: the app is up
        assert pa.default_memory_pool().backend_name == backend
        assert pa.array(range(1000)).nbytes  # allocations work from it
