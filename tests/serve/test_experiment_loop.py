"""The whole experiment loop from the command line, as an operator runs it: create an
experiment comparing two blend weightings of the feed, simulate a week of shoppers through
the engine, ``experiment report`` gives the verdict with plots, and the dashboard, opened in a
real browser, lists the experiment with that verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from serving import KEYS, chromium, serve_process
from typer.testing import CliRunner

from mini import copy_workspace
from moodboard.cli import app
from moodboard.ingest import Workspace

pytestmark = pytest.mark.browser
EXP = "blend-weights"
COMPOSE = "surfaces.feed.ranker=rank/multihead;surfaces.feed.blend=blend/compose"
SAVES = (
    "surfaces.feed.compose.utility.weights="
    "{p_click=1.0,p_save=8.0,p_add_to_cart=4.0,p_purchase=8.0,p_hide=-4.0}"
)
runner = CliRunner()


def _cli(*args: str) -> str:
    res = runner.invoke(app, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.fixture(scope="module")
def looped(mini_engine: Workspace, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ws = copy_workspace(mini_engine, tmp_path_factory.mktemp("loop") / "ws")
    w = str(ws.root)
    _cli("experiment", "create", EXP, "--workspace", w, "--description", "saves weighted 8",
         "--arm", f"control:0.5:{COMPOSE}", "--arm", f"saves:0.5:{COMPOSE};{SAVES}")  # fmt: skip
    _cli("simulate", "--through-engine", "--workspace", w, "--users", "60", "--days", "7",
         "--json")  # fmt: skip
    report = json.loads(_cli("experiment", "report", EXP, "--workspace", w, "--json"))
    return {"ws": ws, "report": report}


def test_the_report_has_a_verdict_exposures_and_plots(looped: dict[str, Any]) -> None:
    report, ws = looped["report"], looped["ws"]
    exposed = report["exposures"]
    assert set(exposed) == {"control", "saves"} and min(exposed.values()) >= 5
    assert report["srm"]["p_value"] is not None
    assert report["verdict"]["decision"] in {"ship", "no_ship", "inconclusive", "blocked_srm"}
    assert {m["metric"] for m in report["metrics"]} >= {"clicks_per_user", "ctr", "hides_per_user"}
    days = {d["day"] for d in report["daily"]}
    assert len(days) >= 5  # a week of shoppers: a path of daily looks
    html = (ws.root / "experiments" / "reports" / f"{EXP}.html").read_text()
    assert html.count("<svg") >= 3 and "saves weighted 8" in html


@pytest.fixture(scope="module")
def server(looped: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("loop-log") / "server.log"
    with serve_process(looped["ws"].root, log) as (base, _):
        yield base


def test_the_dashboard_shows_the_experiment_and_its_verdict(
    looped: dict[str, Any], server: str
) -> None:
    decision = looped["report"]["verdict"]["decision"]
    with chromium() as b:
        page = b.new_page(base_url=server)
        page.set_default_timeout(20_000)
        page.goto(f"/dashboard?key={KEYS['admin']}")
        row = page.locator(f'[data-experiment="{EXP}"]')
        row.wait_for()
        assert row.get_attribute("data-decision") == decision
        assert row.get_attribute("data-status") == "running"
        page.locator(f'a[href="/dashboard/experiments/{EXP}"]').first.click()
        page.wait_for_url(f"**/dashboard/experiments/{EXP}")
        assert page.locator("svg").count() >= 3
        assert decision.replace("_", " ").lower() in page.locator("#verdict").inner_text().lower()
