"""``moodboard analyze search``: search analytics from the workspace's event log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _settings, app, err, out
from moodboard.cli.experiment import _when
from moodboard.cli.experiment_stats import EngineOpt, _engine

analyze_app = typer.Typer(help="Analytics of the event log for the people who tune the engine.",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(analyze_app, name="analyze")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _queries(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table("query", "searches", "users", "zero results", "CTR", "trend", title=title)
    for r in rows:
        table.add_row(r["query"], str(r["searches"]), str(r["users"]), str(r["zero_result"]),
                      _pct(r["ctr"]), _ratio(r["trend"]))  # fmt: skip
    return table


@analyze_app.command("search")
def search_cmd(
    workspace: WorkspaceOpt = None,
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, max=3660, help="Days analysed [default: config's]."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="ISO end of the window (default: the latest search)."),
    ] = None,
    engine: EngineOpt = "duckdb",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write the plots (SVG and PNG) into DIR.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Top queries, zero-result and low-engagement queries with volume and trend, the
    click-through curve by position, searches per via (autocomplete, chip, related, module)
    and the reformulation rate."""
    from moodboard.experiment.search_analytics import analyze_search
    from moodboard.experiment.search_plots import write_search_plots
    from moodboard.ingest import Workspace

    with _errors():
        s = _settings(workspace)
        cfg = s.search_analytics
        if days is not None:
            cfg = cfg.model_copy(update={"window_days": days})
        result = analyze_search(
            Workspace(s.workspace), cfg, until=_when(until, "--until"), engine=_engine(engine)
        ).to_dict()
        files = write_search_plots(result, out_dir) if out_dir is not None else []
    if as_json:
        out.print_json(json.dumps(result))
        return
    t = result["totals"]
    out.print(
        f"{t['searches']} searches by {t['users']} shoppers, {result['since'][:10]} .. "
        f"{result['until'][:10]}: CTR {_pct(t['ctr'])}, zero results "
        f"{_pct(t['zero_result_rate'])}, reformulated {_pct(t['reformulation_rate'])}",
        highlight=False,
    )
    out.print(_queries("top queries", result["top_queries"]))
    out.print(_queries("zero-result queries", result["zero_result_queries"]))
    median = _pct(result["median_ctr"])
    out.print(_queries(f"low-engagement queries (median CTR {median})",
                       result["low_engagement_queries"]))  # fmt: skip
    pos = Table("position", "impressions", "clicks", "CTR", "CTR all surfaces",
                title="click-through by position")  # fmt: skip
    for r in result["positions"]:
        pos.add_row(str(r["position"]), str(r["impressions"]), str(r["clicks"]),
                    _pct(r["ctr"]), _pct(r["ctr_all"]))  # fmt: skip
    out.print(pos)
    via = Table("via", "searches", "share", "CTR", title="how searches start")
    for r in result["via"]:
        via.add_row(r["via"], str(r["searches"]), _pct(r["share"]), _pct(r["ctr"]))
    out.print(via)
    for f in files:
        err.print(f"wrote {f}", highlight=False)
