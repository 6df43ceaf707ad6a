"""``moodboard experiment report|plan|aa|ab``: the statistics of experiments, from the logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _settings, out
from moodboard.cli.experiment import _when, experiment_app
from moodboard.errors import ConfigError

EngineOpt = Annotated[
    str, typer.Option("--engine", help="Where the metrics run: duckdb (default) or spark.")
]


def _engine(engine: str) -> Any:
    if engine not in ("duckdb", "spark"):
        raise ConfigError(f"--engine must be duckdb or spark. Got {engine!r} instead.")
    return engine


@experiment_app.command("report")
def report_cmd(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    workspace: WorkspaceOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time of the analysis (default now).")
    ] = None,
    engine: EngineOpt = "duckdb",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Also write the HTML report here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Analyse an experiment (SRM, effects, CUPED, always-valid intervals, Bayesian view,
    segments, guardrails) and write its self-contained HTML report with plots; an experiment
    whose guardrail crossed its always-valid bound is stopped, the report says why."""
    from moodboard.experiment.run import report_experiment
    from moodboard.ingest import Workspace

    with _errors():
        s = _settings(workspace)
        files = report_experiment(
            Workspace(s.workspace), name, s, as_of=_when(as_of, "--as-of"), engine=_engine(engine)
        )
        if out_file is not None:
            out_file.write_text(files.html_path.read_text())
    result = files.analysis
    if as_json:
        out.print_json(json.dumps(result))
        return
    v = result["verdict"]
    out.print(f"{name}: {v['decision']}: {v['why']}", highlight=False)
    table = Table("metric", "arm", "effect", "95% CI", "p (Holm)", "sequential CI")
    for r in result["metrics"]:
        ci, seq = r["ci"], r["sequential_ci"]
        table.add_row(
            r["metric"],
            r["arm"],
            f"{r['effect']:.4g}",
            f"[{ci[0]:.4g}, {ci[1]:.4g}]",
            f"{r.get('p_adjusted', float('nan')):.3g}",
            f"[{seq[0]:.4g}, {seq[1]:.4g}]",
        )
    out.print(table)
    out.print(f"report: {files.html_path}", highlight=False)


@experiment_app.command("plan")
def plan_cmd(
    metric: Annotated[
        str, typer.Option(help="The metric (its variance is read from the logs).")
    ] = "clicks_per_user",
    users: Annotated[
        int | None, typer.Option(min=2, help="Shoppers per arm: prints the detectable effect.")
    ] = None,
    effect: Annotated[
        float | None, typer.Option(help="Absolute effect to detect: prints shoppers per arm.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Power wanted.")] = 0.8,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = "duckdb",
    as_json: JsonOpt = False,
) -> None:
    """Power and minimum detectable effect of a 50/50 experiment, with the metric's per-user
    variance read from the workspace's logs."""
    from moodboard.experiment.power import mde, sample_size
    from moodboard.experiment.run import log_values
    from moodboard.ingest import Workspace

    with _errors():
        s = _settings(workspace)
        _, info = log_values(Workspace(s.workspace), s, metric, _engine(engine))
        if info["kind"] != "mean":
            raise ConfigError(f"plan works on per-user mean metrics; {metric} is a ratio.")
        var = info["variance"]
        n = users if users is not None else int(info["users"] // 2)
        plan: dict[str, Any] = {**info, "alpha": alpha, "power": power, "users_per_arm": n}
        plan["mde"] = mde(var, n, alpha, power)
        plan["mde_relative"] = plan["mde"] / info["mean"] if info["mean"] else None
        if effect is not None:
            plan["effect"] = effect
            plan["users_per_arm_for_effect"] = sample_size(var, effect, alpha, power)
    if as_json:
        out.print_json(json.dumps(plan))
        return
    out.print(
        f"{metric}: mean {info['mean']:.4g}, variance {var:.4g} over {info['users']} shoppers; "
        f"with {n} per arm the detectable effect is {plan['mde']:.4g}"
        + (f" ({plan['mde_relative']:.1%})" if plan["mde_relative"] else "")
        + (
            f"; {plan['users_per_arm_for_effect']} per arm detect {effect:g}"
            if effect is not None
            else ""
        ),
        highlight=False,
    )


@experiment_app.command("aa")
def aa_cmd(
    runs: Annotated[int, typer.Option(min=10, max=100_000, help="A/A experiments.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the splits.")] = 0,
    metric: Annotated[str, typer.Option(help="The mean metric (and CUPED's).")] = (
        "clicks_per_user"
    ),
    ratio_metric: Annotated[str, typer.Option(help="The ratio metric.")] = "ctr",
    days: Annotated[
        int, typer.Option(min=1, max=90, help="Daily looks of the sequential test.")
    ] = 7,
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = "duckdb",
    as_json: JsonOpt = False,
) -> None:
    """A/A experiments resampled from the workspace's logs: each splits the shoppers at random
    into two arms and tests them; the false-positive rate of each test type should be alpha
    (0.05), the always-valid test's error over daily looks at most alpha, and a planted SRM
    (a 50/50 split logged 52/48 over 10,000 shoppers) flagged."""
    from moodboard.experiment.run import log_values
    from moodboard.experiment.validate import aa_runs, planted_srm
    from moodboard.ingest import Workspace

    with _errors():
        s = _settings(workspace)
        ws, backend = Workspace(s.workspace), _engine(engine)
        mean_values, info = log_values(ws, s, metric, backend)
        ratio_values, _ = log_values(ws, s, ratio_metric, backend)
        alpha = s.experiment.alpha
        means = aa_runs(mean_values, runs, seed, alpha, days)
        ratios = aa_runs(ratio_values, runs, seed + 1, alpha, days)
        result = {
            "runs": runs,
            "users": info["users"],
            "false_positive_rate": {
                "mean": means["mean"],
                "ratio": ratios["ratio"],
                "cuped": means.get("cuped"),
            },
            "sequential_error": means["sequential"],
            "srm_planted_flagged": bool(
                planted_srm(seed=seed, threshold=s.experiment.srm_threshold)
            ),
        }
    if as_json:
        out.print_json(json.dumps(result))
        return
    fp = result["false_positive_rate"]
    out.print(
        f"{runs} A/A experiments over {info['users']} shoppers: false positives mean "
        f"{fp['mean']:.3f}, ratio {fp['ratio']:.3f}, CUPED {fp['cuped']}; sequential error "
        f"{result['sequential_error']:.4f}; planted SRM flagged: {result['srm_planted_flagged']}",
        highlight=False,
    )


@experiment_app.command("ab")
def ab_cmd(
    effect: Annotated[float, typer.Option(help="The planted absolute effect on the metric.")],
    runs: Annotated[int, typer.Option(min=10, max=100_000, help="A/B experiments.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the splits.")] = 0,
    metric: Annotated[str, typer.Option(help="The metric.")] = "clicks_per_user",
    workspace: WorkspaceOpt = None,
    engine: EngineOpt = "duckdb",
    as_json: JsonOpt = False,
) -> None:
    """A/B experiments with a planted effect, resampled from the workspace's logs: how often
    the 95% intervals cover the true effect (0.95 expected), and how much CUPED shrinks them."""
    from moodboard.experiment.run import log_values
    from moodboard.experiment.validate import ab_coverage
    from moodboard.ingest import Workspace

    with _errors():
        s = _settings(workspace)
        values, info = log_values(Workspace(s.workspace), s, metric, _engine(engine))
        result = {"runs": runs, "users": info["users"], "effect": effect, "metric": metric}
        result["coverage"] = ab_coverage(values, runs, effect, seed, s.experiment.alpha)
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(
        f"{runs} A/B experiments, planted effect {effect:g} on {metric}: {result['coverage']}"
    )
