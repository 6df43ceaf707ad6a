"""``moodboard evaluate ope --logs workspace``: a candidate module policy of the home feed
estimated from the workspace's own logs (``evaluate.ope_logs``) and, with ``--simulate-days``,
compared with its on-policy value simulated through the engine."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from moodboard.cli.common import _errors, _fail, _settings, err, out

if TYPE_CHECKING:
    from moodboard.config import Settings
    from moodboard.evaluate.ope_logs import ModuleRounds
    from moodboard.ingest import Workspace

#: The on-policy simulation shows the feed's modules whatever the workspace's settings.
MODULES_ON = {"surfaces.feed.modules.enabled": True}


def read_rounds(
    ws: Workspace, settings: Settings, reward: str, since: datetime | None
) -> ModuleRounds:
    """The module rounds of a workspace's event log (``evaluate.ope_logs.module_rounds``).

    Raises
    ------
    InputError
        If the workspace has no events.
    ConfigError
        As ``module_rounds``.
    """
    from moodboard.errors import InputError
    from moodboard.evaluate.ope_logs import module_rounds
    from moodboard.pipelines import connect

    if not ws.events.files():
        raise InputError(f"The workspace {ws.root} has no events: serve or simulate some first.")
    events = connect("duckdb").read_parquet(ws.events.glob())
    return module_rounds(events, reward, settings.rank.labels, since)


def simulate_on_policy(
    source: Workspace, settings: Settings, overrides: dict[str, Any], reward: str, folder: Path
) -> tuple[ModuleRounds, dict[str, Any]]:
    """The rounds of ``settings.simulate.days`` days simulated through the engine of a copy of
    ``source`` (in ``folder``, as ``simulate.arms`` copies an arm's) with the module policy of
    ``overrides``, and what the simulation was.

    Raises
    ------
    ConfigError, InputError
        As ``apply_overrides``, ``simulate_through_engine`` and ``module_rounds``.
    """
    from moodboard.config.overrides import apply_overrides
    from moodboard.simulate.arms import copy_workspace
    from moodboard.simulate.engine import simulate_through_engine

    configured = apply_overrides(settings, overrides | MODULES_ON)
    copy = copy_workspace(source, folder / "candidate")
    run = simulate_through_engine(copy, configured)
    rounds = read_rounds(copy, configured, reward, run.start)
    sim = {"from": str(source.root), "users": run.users, "days": run.days}
    return rounds, sim | {"start": run.start.date().isoformat(), "seed": configured.simulate.seed}


def evaluate_logs(
    workspace: Path | None,
    policy: str,
    *,
    reward: str,
    since: str | None,
    simulate_days: int,
    simulate_from: Path | None,
    users: int | None,
    bootstrap: int,
    seed: int,
    as_json: bool,
) -> None:
    """The ``--logs workspace`` mode of ``moodboard evaluate ope`` (its options)."""
    from pydantic import ValidationError

    from moodboard.config.overrides import parse_overrides
    from moodboard.evaluate.ope import OPEConfig
    from moodboard.evaluate.ope_logs import evaluate_module_policy
    from moodboard.evaluate.ope_reward import RewardModelConfig
    from moodboard.ingest import Workspace

    try:
        start = datetime.fromisoformat(since) if since else None
        ope = OPEConfig(n_bootstrap=bootstrap, seed=seed)
    except (ValueError, ValidationError) as e:
        _fail(f"--since must be an ISO date or time and --bootstrap >= 10: {e}")
    settings = _settings(workspace)
    with _errors():
        overrides = parse_overrides(policy)
        with err.status("reading the logged module rows"):
            rounds = read_rounds(Workspace(settings.workspace), settings, reward, start)
        with err.status(f"off-policy evaluation of {policy or 'the logging policy'}"):
            report = evaluate_module_policy(
                rounds, settings, overrides, reward, ope, RewardModelConfig(seed=seed)
            )
        if simulate_days:
            sim = settings.simulate.model_copy(
                update={"days": simulate_days} | ({"users": users} if users else {})
            )
            source = Workspace(simulate_from) if simulate_from else Workspace(settings.workspace)
            what = f"simulating {sim.users} shoppers for {sim.days} days on-policy"
            configured = settings.model_copy(update={"simulate": sim})
            with tempfile.TemporaryDirectory(prefix="moodboard-ope-") as tmp, err.status(what):
                live, info = simulate_on_policy(source, configured, overrides, reward, Path(tmp))
            report = report.with_on_policy(float(live.reward.mean()), len(live), info)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    _print(report)


def _print(report: Any) -> None:
    truth = report.on_policy
    policy = "; ".join(f"{k}={v}" for k, v in report.policy.items()) or "as logged"
    title = f"The module policy ({policy}): {report.reward}s per module row"
    notes = [
        f"{report.rounds:,} logged rows of {report.pages:,} feed pages, mean {report.logged:.4f} "
        "(the logging policy's value); 95% bootstrap intervals; SLOPE selects (*)",
        f"{report.mismatched} logged rows do not carry the workspace settings' propensity"
        if report.mismatched
        else "",
        f"on-policy {truth:.4f}: {report.on_policy_rounds:,} rows of {report.simulation['users']} "
        f"shoppers over {report.simulation['days']} simulated days; error: relative to it"
        if truth is not None
        else "",
    ]
    t = Table(title=title, caption="\n".join(n for n in notes if n))
    for c in ["estimator", "estimate", "95% interval", *(["error"] if truth is not None else [])]:
        t.add_column(c, no_wrap=True)
    for name, r in report.estimators.items():
        lo, hi = r["ci"]
        row = [name + (" *" if name == report.selected else ""), f"{r['estimate']:.4f}"]
        row.append(f"{lo:.4f}-{hi:.4f}")
        if truth is not None:
            e = r["relative_error"]
            row.append("-" if e is None else f"{e:.3f}")
        t.add_row(*row)
    out.print(t)
