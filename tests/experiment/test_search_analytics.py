"""Search analytics on a hand-made log (``tests/search_log.py``): the planted volumes, trends,
zero-result and low-engagement queries, the falling click-through curve, via counts and the
reformulation are found; the plots and ``moodboard analyze search --json`` show them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.experiment.search_analytics import analyze_search
from moodboard.experiment.search_config import SearchAnalyticsConfig
from moodboard.experiment.search_plots import search_svgs
from moodboard.ingest import Workspace
from search_log import CLICKS_AT, START, VIA, search_workspace

CFG = SearchAnalyticsConfig(window_days=14, min_volume=10)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return search_workspace(tmp_path_factory.mktemp("search-log") / "ws")


@pytest.fixture(scope="module")
def result(ws: Workspace) -> dict:
    return analyze_search(ws, CFG).to_dict()


def test_top_queries_have_their_volumes_trends_and_ctr(result: dict) -> None:
    top = {r["query"]: r for r in result["top_queries"]}
    order = [r["query"] for r in result["top_queries"]]
    assert order == ["red shoes", "blue dress", "zzz", "green bag"]
    assert top["green bag"]["searches"] == 1  # the server's page without a search event
    # "Blue  Dress" is counted as "blue dress"; the two quick "zzz" retries are searches too
    assert top["red shoes"]["searches"] == 40 and top["blue dress"]["searches"] == 12
    assert top["zzz"]["searches"] == 6
    assert top["red shoes"]["trend"] == pytest.approx(3.0)  # 10 -> 30
    assert top["blue dress"]["trend"] == pytest.approx(1.0)
    assert top["red shoes"]["ctr"] == pytest.approx(CLICKS_AT[0] / 40)
    t = result["totals"]
    assert t["searches"] == 59 and t["zero_result"] == 6 and t["engaged"] == CLICKS_AT[0]
    assert t["clicks_per_search"] == pytest.approx(sum(CLICKS_AT) / 59)
    assert t["reformulated"] == 1  # "zzz" again 20 s later


def test_zero_result_and_low_engagement_queries_are_found(result: dict) -> None:
    assert [(r["query"], r["zero_result"]) for r in result["zero_result_queries"]] == [("zzz", 6)]
    # median CTR of the queries with >= 10 searches: (0.5 + 0) / 2; blue dress is under half
    assert result["median_ctr"] == pytest.approx(0.25)
    assert [r["query"] for r in result["low_engagement_queries"]] == ["blue dress"]


def test_click_through_falls_with_the_position(result: dict) -> None:
    rows = result["positions"]
    assert [r["position"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["clicks"] for r in rows] == list(CLICKS_AT)
    assert all(r["impressions"] == 53 for r in rows)  # zzz pages were empty: not logged
    ctr = [r["ctr"] for r in rows]
    assert ctr == sorted(ctr, reverse=True) and ctr[0] > 10 * ctr[-1]


def test_searches_are_counted_per_via(result: dict) -> None:
    via = {r["via"]: r for r in result["via"]}
    assert via["autocomplete"]["searches"] == VIA["autocomplete"]
    assert via["chip"]["searches"] == VIA["chip"]
    assert via["related"]["searches"] == 0 and via["related"]["ctr"] is None
    assert via["none"]["searches"] == 59 - sum(VIA.values())
    assert via["autocomplete"]["ctr"] == 1.0  # the first red shoes searches were all clicked


def test_the_window_and_an_empty_log(ws: Workspace, tmp_path: Path) -> None:
    week1 = analyze_search(
        ws, SearchAnalyticsConfig(window_days=7), until=START + timedelta(days=7)
    )
    assert week1.totals["searches"] == 10 + 6 + 1
    empty = analyze_search(Workspace(tmp_path / "none"), CFG)
    assert empty.totals["searches"] == 0 and empty.top_queries == [] and empty.positions == []
    assert all(s.startswith("<svg") for s in search_svgs(empty.to_dict()).values())


def test_plots_and_the_cli_json(ws: Workspace, result: dict, tmp_path: Path) -> None:
    svgs = search_svgs(result)
    assert set(svgs) == {"positions", "daily", "via"}
    assert "clicks / impressions" in svgs["positions"] and "autocomplete" in svgs["via"]
    out = tmp_path / "plots"
    res = CliRunner().invoke(
        app,
        ["analyze", "search", "-w", str(ws.root), "--days", "14", "--json", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed["totals"] == result["totals"]
    assert printed["top_queries"][0]["query"] == "red shoes"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"search-{n}.{e}" for n in ("daily", "positions", "via") for e in ("png", "svg")
    )
    assert (out / "search-positions.png").read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(app, ["analyze", "search", "-w", str(ws.root), "--until", "soon"])
    assert bad.exit_code == 2 and "--until must be an ISO time" in bad.output
