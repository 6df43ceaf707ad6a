"""The operator pages: experiments with their stored verdicts, health, artifact, latency, the
report route, and who may open them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from serving import KEYS, api_client, auth_headers, serve_settings

from analysis_sample import sample_analysis, sample_spec
from moodboard.experiment.store import ExperimentStore
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.serve.auth import OPERATOR_COOKIE, operator_token
from moodboard.serve.keys import KEYS_FILE
from moodboard.serve.routes.dashboard import quantile

HOSTILE = "<script>alert(1)</script>"
ADMIN = auth_headers("admin")


def _workspace(root: Path) -> Workspace:
    """Five products, no build; experiment ``feed-saves`` with a stored analysis (ship) and
    ``feed-noop``, stopped, without one."""
    ws = Workspace(root)
    ids = [f"p{i}" for i in range(5)]
    ingest_catalog(ws, [pa.table({"id": ids, "title": [f"Item {i}" for i in ids]})])
    store = ExperimentStore(ws.root)
    store.save(sample_spec("feed-saves"))
    stopped = sample_spec("feed-noop").model_copy(
        update={"status": "stopped", "stopped_reason": HOSTILE}
    )
    store.save(stopped)
    reports = store.folder / "reports"
    reports.mkdir(parents=True)
    (reports / "feed-saves.json").write_text(json.dumps(sample_analysis("feed-saves")))
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _workspace(tmp_path_factory.mktemp("dashboard") / "ws")


@pytest.fixture(scope="module")
def client(ws: Workspace) -> Iterator[TestClient]:
    """A server over the workspace; the client sends no key unless a test adds one."""
    with api_client(ws.root, auth="none") as c:
        yield c


def test_dashboard_lists_experiments_with_their_stored_verdicts(client: TestClient) -> None:
    r = client.get("/dashboard", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    page = r.text
    assert 'data-experiment="feed-saves"' in page
    row = page[page.index('data-experiment="feed-saves"') :].split("</tr>")[0]
    assert 'data-decision="ship"' in row
    assert "saves_per_user rose 24%" in row
    assert 'href="/dashboard/experiments/feed-saves"' in row
    assert "control (0.5)" in row and "saves (0.5)" in row
    noop = page[page.index('data-experiment="feed-noop"') :].split("</tr>")[0]
    assert 'data-decision="none"' in noop and 'data-status="stopped"' in noop
    assert "moodboard experiment report feed-noop" in noop
    assert HOSTILE not in page and "&lt;script&gt;" in noop


def test_dashboard_shows_health_artifact_and_latency(client: TestClient) -> None:
    for _ in range(3):
        client.get("/healthz")
    page = client.get("/dashboard", headers=ADMIN).text
    assert "<th>products</th><td>5</td>" in page
    assert 'id="no-artifact"' in page
    assert 'data-surface="healthz"><td>healthz</td><td>3</td>' in page
    manifest = {
        "created_at": "2026-01-10T00:00:00+00:00",
        "data": {"products": 5, "events_total": 40},
        "components": {
            "rank/multihead": {
                "path": "rank_multihead",
                "trained": True,
                "rows": 2000,
                "valid_auc": {"click": 0.5763},
                "config": {"dim": 32},
            },
        },
        "timings_s": {"rank_multihead": 9.66},
    }
    engine = SimpleNamespace(version="v20260110T000000000000Z", manifest=manifest)
    live = SimpleNamespace(version=engine.version, engine=engine)
    state = client.app.state  # type: ignore[attr-defined]
    real, state.live = state.live, live
    try:
        page = client.get("/dashboard", headers=ADMIN).text
    finally:
        state.live = real
    assert 'id="artifact-version">v20260110T000000000000Z<' in page
    row = page[page.index('data-component="rank/multihead"') :].split("</tr>")[0]
    assert "valid_auc.click = 0.5763" in row and "rows = 2,000" in row
    assert "dim" not in row  # parameters are not metrics


def test_report_route_serves_the_stored_report(client: TestClient) -> None:
    r = client.get("/dashboard/experiments/feed-saves", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert 'data-decision="ship"' in r.text and r.text.count("<svg") == 3


def test_report_route_answers_404_and_422_with_what_to_do(client: TestClient) -> None:
    r = client.get("/dashboard/experiments/feed-noop", headers=ADMIN)
    assert r.status_code == 404
    assert "run `moodboard experiment report feed-noop`" in r.json()["detail"]
    r = client.get("/dashboard/experiments/unknown", headers=ADMIN)
    assert r.status_code == 404
    assert "No experiment named 'unknown'" in r.json()["detail"]
    assert "feed-saves" in r.json()["detail"]
    for bad in ("bad.name", "-x", "x" * 49):
        r = client.get(f"/dashboard/experiments/{bad}", headers=ADMIN)
        assert r.status_code == 422, bad
        assert "name" in r.json()["detail"]


def test_an_unreadable_report_is_named_not_fatal(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    (ws.root / "experiments" / "reports" / "feed-saves.json").write_text("{not json")
    with api_client(ws.root, auth="admin") as c:
        page = c.get("/dashboard").text
        assert "report unreadable" in page
        r = c.get("/dashboard/experiments/feed-saves")
        assert r.status_code == 500
        assert "moodboard experiment report feed-saves" in r.json()["detail"]


@pytest.mark.parametrize(
    ("auth", "status"), [("none", 401), ("public", 403), ("write", 403), ("admin", 200)]
)
@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/experiments/feed-saves"])
def test_operator_pages_need_the_admin_key(
    client: TestClient, auth: str, status: int, path: str
) -> None:
    client.cookies.clear()
    r = client.get(path, headers=auth_headers(auth))
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
        assert "/dashboard?key=" in r.json()["detail"]


def test_a_browser_signs_in_once_with_the_key_in_the_url(client: TestClient) -> None:
    client.cookies.clear()
    r = client.get("/dashboard", params={"key": KEYS["admin"]}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard"  # the key leaves the URL
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{OPERATOR_COOKIE}=") and "HttpOnly" in cookie
    assert KEYS["admin"] not in cookie
    client.cookies.set(OPERATOR_COOKIE, r.cookies[OPERATOR_COOKIE])
    assert client.get("/dashboard").status_code == 200
    assert client.get("/dashboard/experiments/feed-saves").status_code == 200
    assert client.get("/admin/reload").status_code in (401, 405)  # the cookie opens no API
    for forged in (
        "1.abc",
        operator_token("another-key", int(time.time()) + 60),
        operator_token(KEYS["admin"], int(time.time()) - 1),
    ):
        client.cookies.set(OPERATOR_COOKIE, forged)
        assert client.get("/dashboard").status_code == 401
    client.cookies.clear()
    for key, status in (("wrong", 401), (KEYS["write"], 403), ("k" * 201, 422)):
        assert client.get("/dashboard", params={"key": key}).status_code == status


def test_demo_mode_with_generated_keys_opens_with_the_keys_file(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    settings = serve_settings(demo_mode=True, admin_key=None)
    with api_client(ws.root, settings, auth="none") as c:
        admin = json.loads((ws.root / KEYS_FILE).read_text())["admin_key"]
        assert c.get("/dashboard").status_code == 401
        r = c.get("/dashboard", params={"key": admin})
        assert r.status_code == 200 and 'data-experiment="feed-saves"' in r.text


def test_quantile_interpolates_inside_buckets() -> None:
    buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.01)
    assert quantile(buckets, 0.95) == pytest.approx(0.1 + 0.9 * 0.5)
    assert quantile([(0.1, 0.0), (float("inf"), 0.0)], 0.5) is None
    assert quantile([(0.1, 0.0), (float("inf"), 4.0)], 0.5) == pytest.approx(0.1)
