"""``moodboard evaluate ope``: off-policy evaluation on a public dataset's logs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, _errors, _fail, err, out
from moodboard.cli.evaluate import evaluate_app


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
    as_json: JsonOpt = False,
) -> None:
    """Estimate the Bernoulli-TS policy's click rate from the Open Bandit random-policy logs
    with ipw, snipw, dm, dr, sndr, switch-dr and dr-os (95% bootstrap intervals), against BTS's
    on-policy rate (the mean click of its own logs); SLOPE selects one estimator."""
    from pydantic import ValidationError

    from moodboard.evaluate.ope import OPEConfig
    from moodboard.evaluate.ope_bandit import OpenBanditOPEConfig, evaluate_open_bandit
    from moodboard.evaluate.ope_reward import RewardModelConfig

    if dataset != "open-bandit":
        _fail(f"--dataset must be open-bandit. Got {dataset!r} instead.")
    if campaign not in ("all", "men", "women"):
        _fail(f"--campaign must be all, men or women. Got {campaign!r} instead.")
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
        report = evaluate_open_bandit(cfg)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    t = Table(
        title=f"BTS's click rate on {campaign}: on-policy {report.on_policy:.5f}",
        caption=f"from {report.rows:,} random-policy impressions ({report.clicks} clicks); "
        f"BTS's action distribution from {n_sim:,} simulated pages; SLOPE selects "
        f"{report.selected} (*)",
    )
    published = report.obp_published or {}
    columns = ["estimator", "estimate", "95% interval", "rel. error"]
    for c in [*columns, *(["obp, 30 runs"] if published else [])]:
        t.add_column(c, no_wrap=True)
    for name, r in report.estimators.items():
        lo, hi = r["ci"]
        label = name + "".join(
            f" {k}={'inf' if r[k] is None else f'{r[k]:g}'}" for k in ("tau", "lambda") if k in r
        )
        label += " *" if name == report.selected else ""
        row = [label, f"{r['estimate']:.5f}", f"{lo:.5f}-{hi:.5f}", f"{r['relative_error']:.3f}"]
        if published:
            row.append(f"{published[name]:.3f}" if name in published else "-")
        t.add_row(*row)
    out.print(t)
