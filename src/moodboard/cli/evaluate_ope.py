"""``moodboard evaluate ope``: off-policy evaluation on a public dataset's logs
(``--dataset open-bandit``) or on the engine's own logs (``--logs workspace``,
``cli.evaluate_ope_logs``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _fail, err, out
from moodboard.cli.evaluate import evaluate_app
from moodboard.cli.evaluate_ope_logs import evaluate_logs


@evaluate_app.command("ope")
def evaluate_ope_cmd(
    dataset: Annotated[
        str | None, typer.Option(help="The logs to evaluate on: open-bandit.")
    ] = None,
    campaign: Annotated[str, typer.Option(help="open-bandit: all, men or women.")] = "all",
    n_sim: Annotated[
        int, typer.Option(help="Simulated pages of BTS's action distribution (Monte Carlo).")
    ] = 100_000,
    bootstrap: Annotated[int, typer.Option(help="Resamples of each interval.")] = 10_000,
    seed: Annotated[
        int, typer.Option(help="Seed of the Monte Carlo, the reward model and the bootstrap.")
    ] = 12345,
    runs: Annotated[
        int,
        typer.Option(
            help="Also obp's protocol for its published figures: the mean relative error over "
            "this many bootstrap resamples of the logs, the reward model refitted in each."
        ),
    ] = 0,
    logs: Annotated[
        str | None, typer.Option(help="Or the engine's own logs: workspace (its events).")
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="--logs: the candidate module policy, settings overrides 'key=value;...' of "
            "surfaces.feed.modules.weights(.KIND) and .epsilon (empty: the logging policy)."
        ),
    ] = "",
    reward: Annotated[
        str, typer.Option(help="--logs: the action that rewards a row: click, save, ...")
    ] = "click",
    since: Annotated[
        str | None, typer.Option(help="--logs: only the pages served from this ISO time on.")
    ] = None,
    simulate_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="--logs: also simulate this many days through the engine on-policy with "
            "--policy (modules on, in a copy of the workspace) and compare.",
        ),
    ] = 0,
    simulate_from: Annotated[
        Path | None,
        typer.Option(
            help="--logs: the workspace the simulation copies (default: the logs' own, the "
            "days after them; the one the logs started from: the same days and shoppers)."
        ),
    ] = None,
    users: Annotated[
        int | None, typer.Option(min=1, help="--simulate-days: shoppers (simulate.users).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Estimate the Bernoulli-TS policy's click rate from the Open Bandit random-policy logs
    with ipw, snipw, dm, dr, sndr, switch-dr and dr-os (95% bootstrap intervals), against BTS's
    on-policy rate (the mean click of its own logs); SLOPE selects one estimator. With --logs
    workspace: a candidate module policy of the home feed (--policy) from the workspace's own
    logged module rows and propensities, the same estimators, against its simulated on-policy
    value with --simulate-days."""
    from pydantic import ValidationError

    if logs is not None:
        if dataset is not None or logs != "workspace":
            _fail(f"Give --dataset open-bandit or --logs workspace. Got {dataset!r}, {logs!r}.")
        evaluate_logs(
            workspace,
            policy,
            reward=reward,
            since=since,
            simulate_days=simulate_days,
            simulate_from=simulate_from,
            users=users,
            bootstrap=bootstrap,
            seed=seed,
            as_json=as_json,
        )
        return

    from moodboard.evaluate.ope import OPEConfig
    from moodboard.evaluate.ope_bandit import OpenBanditOPEConfig, evaluate_open_bandit
    from moodboard.evaluate.ope_reward import RewardModelConfig

    if dataset != "open-bandit":
        _fail(f"--dataset must be open-bandit (or --logs workspace). Got {dataset!r} instead.")
    if campaign not in ("all", "men", "women"):
        _fail(f"--campaign must be all, men or women. Got {campaign!r} instead.")
    if runs < 0:
        _fail(f"--runs must be >= 0. Got {runs} instead.")
    try:
        cfg = OpenBanditOPEConfig(
            campaign=campaign,  # type: ignore[arg-type]
            n_sim=n_sim,
            bts_seed=seed,
            ope=OPEConfig(n_bootstrap=bootstrap, seed=seed),
            reward_model=RewardModelConfig(seed=seed),
        )
    except ValidationError as e:
        _fail(str(e))
    with _errors(), err.status(f"off-policy evaluation on open-bandit/{campaign}"):
        report = evaluate_open_bandit(cfg, runs=runs)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    published = report.obp_published or {}
    ours = report.runs["relative_error"] if report.runs else {}
    tuned = ", ".join(
        f"{name} {k}={'inf' if r[k] is None else f'{r[k]:g}'}"
        for name, r in report.estimators.items()
        for k in ("tau", "lambda")
        if k in r
    )
    notes = [
        f"{report.rows:,} random-policy impressions ({report.clicks} clicks); BTS's action "
        f"distribution from {n_sim:,} simulated pages; error: relative to the on-policy rate",
        f"SLOPE tuned {tuned} and selects {report.selected} (*)" if tuned else "",
        f"{report.runs['n']} runs: mean ± sd of the error over bootstrap resamples of the "  # type: ignore[index]
        "logs, the reward model refitted (obp's protocol)"
        if ours
        else "",
        "obp: obp's published mean error over 30 such runs" if published else "",
    ]
    t = Table(
        title=f"BTS's click rate on {campaign}: on-policy {report.on_policy:.5f}",
        caption="\n".join(n for n in notes if n),
    )
    columns = ["estimator", "estimate", "95% interval", "error"]
    columns += [f"{report.runs['n']} runs"] if ours else []  # type: ignore[index]
    for c in [*columns, *(["obp"] if published else [])]:
        t.add_column(c, no_wrap=True)
    for name, r in report.estimators.items():
        lo, hi = r["ci"]
        label = name + (" *" if name == report.selected else "")
        row = [label, f"{r['estimate']:.5f}", f"{lo:.5f}-{hi:.5f}", f"{r['relative_error']:.3f}"]
        if ours:
            row.append(f"{ours[name]['mean']:.3f}±{ours[name]['std']:.3f}")
        if published:
            row.append(f"{published[name]:.3f}" if name in published else "-")
        t.add_row(*row)
    out.print(t)
