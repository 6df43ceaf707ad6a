"""``moodboard tune weights``: a surface's utility weights against the simulator."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _errors,
    _fail,
    _settings,
    _workspace,
    app,
    err,
    out,
)

tune_app = typer.Typer(help="Tune the engine's parameters against the simulator.")
app.add_typer(tune_app, name="tune")


@tune_app.command("weights")
def tune_weights_cmd(
    workspace: WorkspaceOpt = None,
    surface: Annotated[str, typer.Option(help="The surface whose utility is tuned.")] = "feed",
    trials: Annotated[int, typer.Option(min=1, help="Weight settings to try.")] = 12,
    users: Annotated[int | None, typer.Option(min=1, help="Shoppers per trial.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days per trial.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the shoppers and of the sampler.")] = 0,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where pareto.json and pareto.png go (default: DIR/tune)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep-workspaces", help="Keep each trial's workspace copy.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Search the utility weights of a surface (the multi-head ranker's heads, served through
    blend/compose) with a seeded multi-objective sampler (optuna TPE): each trial runs the same
    simulated shoppers through a copy of the workspace and scores clicks and purchases per
    shopper and page diversity; writes every trial and the Pareto frontier as pareto.json and
    pareto.png."""
    from moodboard.simulate.tune import TuneWeightsConfig, tune_weights, write_report

    s = _settings(workspace)
    sim = s.simulate.model_copy(
        update={k: v for k, v in {"users": users, "days": days, "seed": seed}.items() if v}
    )
    settings = s.model_copy(update={"simulate": sim})
    ws = _workspace(workspace)
    if not ws.exists() or ws.current_artifact() is None:
        _fail(f"{ws.root} has no built engine: run `moodboard build` (or `make demo`) first.")
    folder = out_dir or ws.root / "tune"
    config = TuneWeightsConfig(trials=trials, seed=seed, keep_workspaces=keep)
    say = None if as_json else (lambda m: err.print(m, highlight=False))
    with ExitStack() as stack, _errors():
        scratch = folder / "trials" if keep else None
        if scratch is None:
            tmp = tempfile.TemporaryDirectory(prefix="moodboard-tune-", dir=ws.root.parent)
            scratch = Path(stack.enter_context(tmp))
        results = tune_weights(ws, settings, surface, scratch, config, say=say)
        title = f"{surface}: {sim.users} shoppers x {sim.days} days, {trials} trials"
        table, plot = write_report(results, folder, title)
    if as_json:
        doc = json.loads(table.read_text(encoding="utf-8"))
        out.print_json(json.dumps(doc | {"table": str(table), "plot": str(plot)}))
        return
    t = Table(title=title)
    for col in ("trial", "clicks/user", "purchases/user", "diversity", "Pareto", "weights"):
        t.add_column(col)
    for r in results:
        o = r.objectives
        w = " ".join(f"{k.removeprefix('p_')}={v:.2f}" for k, v in r.weights.items())
        t.add_row(str(r.number), f"{o['clicks_per_user']:.4f}", f"{o['purchases_per_user']:.4f}",
                  f"{o['diversity']:.3f}", "*" if r.pareto else "", w)  # fmt: skip
    out.print(t)
    out.print(f"wrote {table} and {plot}", highlight=False)
