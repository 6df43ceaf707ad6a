"""The dashboard's Search page: operators only, the analysis of the log with its plots, a
cached result, bad parameters refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from serving import api_client, auth_headers, serve_settings

from moodboard.experiment.search_config import SearchAnalyticsConfig
from moodboard.ingest import Workspace
from search_log import search_workspace

ADMIN = auth_headers("admin")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    ws: Workspace = search_workspace(tmp_path_factory.mktemp("dash-search") / "ws")
    settings = serve_settings()
    settings.search_analytics = SearchAnalyticsConfig(min_volume=10)
    with api_client(ws.root, settings, auth="none") as c:
        yield c


def test_search_page_shows_the_analysis_to_operators(client: TestClient) -> None:
    assert client.get("/dashboard/search").status_code in (401, 403)
    r = client.get("/dashboard/search?days=14", headers=ADMIN)
    assert r.status_code == 200, r.text
    page = r.text
    assert r.headers["cache-control"] == "no-store"
    top = page[page.index('id="top"') :].split("</table>")[0]
    assert top.index('data-query="red shoes"') < top.index('data-query="blue dress"')
    zero = page[page.index('id="zero"') :].split("</table>")[0]
    assert 'data-query="zzz"' in zero and 'data-query="red shoes"' not in zero
    assert 'data-query="blue dress"' in page[page.index('id="low-queries"') :]
    assert page.count("<svg") == 3
    assert '<tr data-via="autocomplete"><td>autocomplete</td><td>8</td>' in page
    assert "<b>59</b> searches" in page
    assert 'href="/dashboard/search"' in client.get("/dashboard", headers=ADMIN).text


def test_search_page_is_cached_and_refuses_bad_windows(client: TestClient) -> None:
    from moodboard.serve.routes import dashboard_search

    client.get("/dashboard/search?days=14", headers=ADMIN)
    assert any(days == 14 for _, days in dashboard_search._CACHE)
    cached = dict(dashboard_search._CACHE)
    client.get("/dashboard/search?days=14", headers=ADMIN)
    assert cached == dashboard_search._CACHE  # served from the cache, not recomputed
    for bad in ("0", "99999", "x"):
        r = client.get(f"/dashboard/search?days={bad}", headers=ADMIN)
        assert r.status_code == 422, (bad, r.status_code)
