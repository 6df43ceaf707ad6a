"""``moodboard simulate`` (randomized pages, or through the engine, or arms compared) and
``moodboard demo``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from moodboard.cli.commands import _serve, print_status
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
    print_arms,
    progress_bar,
)
from moodboard.config import Settings

ArmOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--arm",
        help="NAME=OVERRIDES, repeatable (needs --through-engine): settings overrides "
        "'key=value' separated by ';' or ',' (e.g. shuffled='surfaces.feed.ranker=rank/shuffle'"
        "; control= for none). The last arm is the control.",
    ),
]


def _say(quiet: bool) -> Callable[[str], None] | None:
    return None if quiet else (lambda m: err.print(m, highlight=False))


@app.command()
def simulate(
    workspace: WorkspaceOpt = None,
    users: Annotated[int | None, typer.Option(help="Shoppers to simulate.")] = None,
    days: Annotated[int | None, typer.Option(help="Days of activity.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    bot_share: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Share of the accounts that are bots.")
    ] = None,
    through_engine: Annotated[
        bool,
        typer.Option(
            "--through-engine",
            help="Shoppers see the engine's pages (the live artifact; built first if none).",
        ),
    ] = False,
    arm: ArmOpt = None,
    rebuild_every: Annotated[
        int | None,
        typer.Option(min=1, help="Build and reload the engine every D simulated days."),
    ] = None,
    randomized_days: Annotated[
        int, typer.Option(min=0, help="First days on randomized pages (then a build).")
    ] = 0,
    arms_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep each arm's workspace here (default: a temporary folder, removed after)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate shoppers (and bots, with --bot-share) over the workspace catalog and ingest
    their events: on randomized pages, or through the engine (--through-engine), or, with
    --arm twice or more, compare configurations on the same shoppers (each arm in a copy of
    the workspace; prints each arm's purchases, clicks and saves per user and the paired
    difference of the first arm with the last, with its 95% interval)."""
    from moodboard.simulate import run_simulation

    s = _settings(workspace)
    cfg = s.simulate.model_copy(
        update={
            k: v
            for k, v in {"users": users, "days": days, "seed": seed, "bot_share": bot_share}.items()
            if v is not None
        }
    )
    if not through_engine:
        if arm or rebuild_every or randomized_days or arms_dir:
            _fail("--arm, --rebuild-every, --randomized-days and --arms-dir need --through-engine.")
        with _errors(), progress_bar("simulating shoppers", total=cfg.users, quiet=as_json) as adv:
            result = run_simulation(_workspace(workspace), cfg, progress=adv)
        if as_json:
            out.print_json(json.dumps(result.as_dict()))
        else:
            out.print(result.summary(), highlight=False)
        return
    settings = s.model_copy(update={"simulate": cfg})
    if arm:
        _compare(workspace, settings, arm, arms_dir, randomized_days, rebuild_every, as_json)
        return
    from moodboard.simulate.engine import blocks, simulate_through_engine

    total = cfg.users * len(list(blocks(0, cfg.days, randomized_days, rebuild_every)))
    with _errors(), progress_bar("simulating shoppers", total=total, quiet=as_json) as adv:
        run = simulate_through_engine(
            _workspace(workspace),
            settings,
            randomized_days=randomized_days,
            rebuild_every=rebuild_every,
            progress=adv,
            say=_say(as_json),
        )
    if as_json:
        out.print_json(json.dumps(run.as_dict()))
    else:
        out.print(run.summary(), highlight=False)


def _compare(
    workspace: Path | None,
    settings: Settings,
    arm_texts: list[str],
    arms_dir: Path | None,
    randomized_days: int,
    rebuild_every: int | None,
    as_json: bool,
) -> None:
    from moodboard.simulate.arms import check_arms, compare_arms, parse_arm
    from moodboard.simulate.engine import blocks

    ws = _workspace(workspace)
    cfg = settings.simulate
    per_arm = cfg.users * len(list(blocks(0, cfg.days, randomized_days, rebuild_every)))
    with ExitStack() as stack, _errors():
        arms = [parse_arm(a) for a in arm_texts]
        check_arms(arms)
        if not ws.exists():
            _fail(f"{ws.root} is not a workspace yet: run `moodboard ingest catalog` first.")
        folder = arms_dir
        if folder is None:
            tmp = tempfile.TemporaryDirectory(prefix="moodboard-arms-", dir=ws.root.parent)
            folder = Path(stack.enter_context(tmp))
        total = per_arm * len(arms)
        adv = stack.enter_context(progress_bar("arms", total=total, quiet=as_json))
        comparison = compare_arms(
            ws,
            settings,
            arms,
            folder,
            randomized_days=randomized_days,
            rebuild_every=rebuild_every,
            progress=adv,
            say=_say(as_json),
        )
    result = comparison.as_dict()
    if as_json:
        out.print_json(json.dumps(result))
        return
    print_arms(result, f"{result['users']} shoppers, {result['days']} days from {result['start']}")
    growth = result.get("catalog_growth")
    if growth:
        for name, values in growth["arms"].items():
            shown = ", ".join(f"{k} {'-' if v is None else f'{v:.4g}'}" for k, v in values.items())
            out.print(f"{name} (new products, coverage): {shown}", highlight=False)
        for pair, diff in growth["diffs"].items():
            for m, d in diff.items():
                ci = "[{:+.4f}, {:+.4f}]".format(*d["ci"]) if d["ci"] else "(no interval)"
                out.print(f"{pair}: {m} {d['estimate']:+.4f} {ci}", highlight=False)


@app.command()
def demo(
    workspace: WorkspaceOpt = None,
    users: Annotated[int, typer.Option(help="Shoppers to simulate.")] = 2000,
    days: Annotated[int, typer.Option(help="Days of activity.")] = 7,
    engine_days: Annotated[
        int, typer.Option(min=0, help="Last days through the engine (after a build).")
    ] = 2,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Stop before serving.")] = False,
) -> None:
    """Ingest the fashion catalog, simulate shoppers (the first days on randomized pages, with
    their propensities logged, then a build, then the last --engine-days days through the
    engine), build if nothing is built, and serve (each step only once) in demo mode
    (``serve.demo_mode``: the web app lets a visitor shop as a simulated shopper)."""
    from moodboard.datasets import ingest_dataset
    from moodboard.simulate.engine import simulate_through_engine

    if engine_days > days:
        _fail(f"--engine-days must be at most --days ({days}). Got {engine_days} instead.")
    s = _settings(workspace)
    ws = _workspace(workspace)
    with _errors():
        if ws.status()["products"] == 0:
            with progress_bar("ingesting the fashion catalog") as adv:
                r = ingest_dataset(ws, "fashion", progress=adv)["catalog"]
            out.print(f"catalog: {r.summary()}", highlight=False)
        else:
            out.print("catalog: already in the workspace", highlight=False)
        if ws.status()["events_total"] == 0:
            cfg = s.simulate.model_copy(update={"users": users, "days": days})
            blocks = 2 if 0 < engine_days < days else 1
            with progress_bar("simulating shoppers", total=users * blocks) as adv:
                run = simulate_through_engine(
                    ws,
                    s.model_copy(update={"simulate": cfg}),
                    randomized_days=days - engine_days,
                    progress=adv,
                    say=_say(False),
                )
            out.print(run.summary(), highlight=False)
        else:
            out.print("events: already in the workspace", highlight=False)
        if ws.current_artifact() is None:
            from moodboard.build import build as build_artifact

            with err.status("building") as status:
                manifest = build_artifact(ws, say=lambda m: status.update(m))
            out.print(
                f"built {manifest['version']} in {sum(manifest['timings_s'].values()):.0f} s",
                highlight=False,
            )
        else:
            out.print(f"artifact: {ws.current_artifact()} already live", highlight=False)
    print_status(ws.status())
    if not no_serve:  # a demo server: visitors may shop as the simulated shoppers
        _serve(
            s.model_copy(update={"serve": s.serve.model_copy(update={"demo_mode": True})}),
            ws,
            None,
            None,
        )
