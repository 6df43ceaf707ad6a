"""``moodboard evaluate broad-search``: do chips and module rows help shoppers who start with a
broad query? Simulated shoppers search through the workspace's live engine with and without
them (``simulate.broad``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from moodboard.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _errors,
    _fail,
    _settings,
    _workspace,
    out,
    print_arms,
)
from moodboard.cli.evaluate import evaluate_app


@evaluate_app.command("broad-search")
def evaluate_broad_cmd(
    workspace: WorkspaceOpt = None,
    shoppers: Annotated[int, typer.Option(min=2, help="Shoppers (one session each).")] = 400,
    seed: Annotated[int, typer.Option(help="Seed of the shoppers' tastes and draws.")] = 0,
    max_queries: Annotated[int, typer.Option(min=1, max=10, help="Queries per session.")] = 3,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Items seen per page.")] = 24,
    as_json: JsonOpt = False,
) -> None:
    """Broad-query sessions of simulated shoppers through the live engine's search surface,
    with chips and module rows (``assisted``) and without (``grid``), on the same shoppers:
    each arm's purchases per session, sessions with a purchase, queries asked and queries to
    the first purchase, and the paired difference with its 95% interval."""
    from moodboard.serve.registry import Engine
    from moodboard.simulate.broad import BroadSessionConfig, BroadSessions, engine_chips
    from moodboard.simulate.run import Simulator

    settings = _settings(workspace)
    ws = _workspace(workspace)
    if not ws.exists():
        _fail(f"{ws.root} is not a workspace yet: run `moodboard demo --no-serve` first.")
    with _errors():
        engine = Engine.load(ws, settings=settings)
        sim_settings = settings.simulate.model_copy(update={"seed": seed})
        sim = Simulator.on(ws, sim_settings)
        cfg = BroadSessionConfig(
            shoppers=shoppers, seed=seed, max_queries=max_queries, page_size=page_size
        )
        result = BroadSessions(engine, sim, cfg, chips=engine_chips(engine)).run().as_dict()
    if as_json:
        out.print_json(json.dumps(result))
        return
    print_arms(result, f"{shoppers} broad-query sessions (seed {seed})")
