"""The command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moodboard.cli import app

runner = CliRunner()


def _catalog(tmp_path: Path) -> Path:
    p = tmp_path / "catalog.csv"
    p.write_text(
        "sku,name,price,colour\nA1,Red dress,19.5,red\nA2,Blue shirt,-1,blue\n"
        "A3,Green hat,7,green\n"
    )
    return p


def test_help_lists_every_verb() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "moodboard.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for verb in (
        "ingest",
        "validate",
        "status",
        "simulate",
        "build",
        "serve",
        "demo",
        "evaluate",
        "bench",
    ):
        assert verb in res.stdout


def test_ingest_catalog_with_map_prints_summary_and_json(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    cat = str(_catalog(tmp_path))
    res = runner.invoke(
        app, ["ingest", "catalog", cat, "-w", ws, "--map", "sku=id", "--map", "name=title"]
    )
    assert res.exit_code == 0, res.output
    assert "read 3, stored 2, quarantined 1" in res.stdout
    res = runner.invoke(
        app,
        ["ingest", "catalog", cat, "-w", ws, "--map", "sku=id", "--map", "name=title", "--json"],
    )
    out = json.loads(res.stdout)
    assert set(out) == {"read", "stored", "quarantined", "quarantine_file"}
    assert (out["read"], out["stored"], out["quarantined"]) == (3, 2, 1)
    reason = json.loads(Path(out["quarantine_file"]).read_text().splitlines()[0])
    assert reason["sku"] == "A2" and "price" in reason["_reason"]
    status = json.loads(runner.invoke(app, ["status", "-w", ws, "--json"]).stdout)
    assert status == {
        "products": 2,
        "boards": 0,
        "users": 0,
        "events": {},
        "events_total": 0,
        "events_pending": 0,
        "impressions_dropped": 0,
        "artifact": None,
    }


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("name,price\nx,1\n", "lacks the required column 'id' and 'title'"),
        ("", "empty"),
    ],
)
def test_unreadable_files_exit_2_with_one_line_error(tmp_path: Path, content, message) -> None:
    path = tmp_path / "catalog.csv"
    if content is not None:
        path.write_text(content)
    res = runner.invoke(app, ["ingest", "catalog", str(path), "-w", str(tmp_path / "ws")])
    assert res.exit_code == 2
    assert message in res.output and res.output.count("\n") <= 3


def test_validate_events_prints_pass_fail_with_examples(tmp_path: Path) -> None:
    ws = str(tmp_path / "ws")
    runner.invoke(
        app,
        [
            "ingest",
            "catalog",
            str(_catalog(tmp_path)),
            "-w",
            ws,
            "--map",
            "sku=id",
            "--map",
            "name=title",
        ],
    )
    ev = tmp_path / "events.jsonl"
    ev.write_text(
        '{"event_id": "1", "ts": "2026-01-01T10:00:00", "user_id": "u", "type": "click", '
        '"item_id": "A1"}\n'
        '{"event_id": "2", "ts": "soon", "user_id": "u", "type": "click", "item_id": "A1"}\n'
        '{"event_id": "3", "ts": "2026-01-01", "user_id": "u", "type": "click", "item_id": "ZZ"}\n'
    )
    res = runner.invoke(app, ["validate", "events", str(ev), "-w", ws])
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert "ts_is_timestamp FAIL 1  rows 2" in lines
    assert "item_in_catalog FAIL 1  rows 3" in lines
    assert "event_id_required PASS 0" in lines
    assert (
        json.loads(runner.invoke(app, ["status", "-w", ws, "--json"]).stdout)["events_total"] == 0
    )  # validate stores nothing


def test_experiment_lists_its_commands(tmp_path: Path) -> None:
    res = runner.invoke(app, ["experiment", "--help"])
    assert res.exit_code == 0
    for verb in ("create", "list", "stop", "report", "plan", "aa", "ab"):
        assert verb in res.output


def test_serve_on_a_folder_that_is_no_workspace_says_what_to_do(tmp_path: Path) -> None:
    res = runner.invoke(app, ["serve", "-w", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "moodboard ingest catalog" in res.output


def test_build_of_an_empty_workspace_says_what_to_do(tmp_path: Path) -> None:
    res = runner.invoke(app, ["build", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 2 and "ingest a catalog first" in res.output


def test_build_engine_must_be_duckdb_or_spark(tmp_path: Path) -> None:
    res = runner.invoke(app, ["build", "-w", str(tmp_path / "ws"), "--engine", "presto"])
    assert res.exit_code == 2 and "duckdb or spark" in res.output


def test_status_shows_the_accounts_the_live_build_filtered_as_bots(mini_engine) -> None:
    from moodboard.pipelines import RULES

    ws = str(mini_engine.root)
    st = json.loads(runner.invoke(app, ["status", "-w", ws, "--json"]).stdout)
    # the mini engine's 300 simulated shoppers and planted sessions: nobody is a bot
    assert st["bots"] == {
        "enabled": True,
        "flagged": 0,
        "by_rule": dict.fromkeys(RULES, 0),
        "path": "bots.parquet",  # the flagged accounts, in the version
    }
    res = runner.invoke(app, ["status", "-w", ws])
    assert res.exit_code == 0 and "accounts filtered as bots" in res.stdout
