"""``moodboard experiment``: create, list and stop experiments; report, plan and validate
their statistics."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _settings, app, out
from moodboard.errors import ConfigError

experiment_app = typer.Typer(
    help="Experiments: assign shoppers to arms, measure, decide.", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")

ArmsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--arm",
        help="NAME:WEIGHT[:OVERRIDES], repeatable (at least two; the first is the control "
        "unless --control names another): OVERRIDES are serving-time settings 'key=value' "
        "separated by ';' (e.g. 'saves:0.5:surfaces.feed.compose.utility.weights={p_save=6}').",
    ),
]


def parse_arm(text: str) -> dict[str, Any]:
    """``NAME:WEIGHT[:OVERRIDES]`` as an arm's fields.

    Raises
    ------
    ConfigError
        If it does not have that form.
    """
    from moodboard.config.overrides import parse_overrides

    name, sep, rest = text.partition(":")
    weight, _, overrides = rest.partition(":")
    try:
        w = float(weight)
    except ValueError:
        w = None
    if not sep or not name or w is None:
        raise ConfigError(
            f"An --arm must look like NAME:WEIGHT[:OVERRIDES] (e.g. control:0.5 or "
            f"shuffled:0.5:surfaces.feed.ranker=rank/shuffle). Got {text!r} instead."
        )
    return {"name": name, "weight": w, "overrides": parse_overrides(overrides)}


def _store(workspace: Path | None):
    from moodboard.experiment.store import ExperimentStore

    s = _settings(workspace)
    return s, ExperimentStore(s.workspace, s.experiment.declared)


def _live_manifest(root: Path) -> dict[str, Any] | None:
    from moodboard.build.layout import read_manifest
    from moodboard.ingest import Workspace

    ws = Workspace(root)
    version = ws.current_artifact()
    return None if version is None else read_manifest(ws.version_path(version))


@experiment_app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="The experiment's name ([A-Za-z0-9_-], <= 48).")],
    arm: ArmsOpt = None,
    workspace: WorkspaceOpt = None,
    layer: Annotated[str, typer.Option(help="Experiments of one layer never share a shopper.")] = (
        "default"
    ),
    traffic: Annotated[float, typer.Option(help="Share of the layer's shoppers (0..1].")] = 1.0,
    salt: Annotated[str, typer.Option(help="Hash salt (default: the name).")] = "",
    control: Annotated[str | None, typer.Option(help="The control arm (default: first).")] = None,
    start: Annotated[str | None, typer.Option(help="ISO time it starts (default: now).")] = None,
    stop: Annotated[str | None, typer.Option(help="ISO time it ends (default: never).")] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="A metric to report, repeatable.")
    ] = None,
    guardrail: Annotated[
        list[str] | None, typer.Option(help="A guardrail metric, repeatable.")
    ] = None,
    surface: Annotated[
        list[str] | None,
        typer.Option(help="A surface whose pages expose a shopper (default: those overridden)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What it tests and why.")] = "",
    kind: Annotated[
        str,
        typer.Option(help="ab (each shopper one arm) or interleave (both arms on every page)."),
    ] = "ab",
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="A JSON experiment instead of options.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an experiment: checked against the settings and the live artifact, given a free
    range of its layer, saved in the workspace (a running server picks it up)."""
    from moodboard.experiment.store import parse_spec

    with _errors():
        s, store = _store(workspace)
        if from_file is not None:
            data = _read_json(from_file)
            data.setdefault("name", name)
        else:
            data = {
                "name": name,
                "arms": [parse_arm(a) for a in arm or []],
                "layer": layer,
                "traffic": traffic,
                "salt": salt,
                "control": control,
                "start": _when(start, "--start"),
                "stop": _when(stop, "--stop"),
                "metrics": tuple(metric or ()),
                "guardrails": tuple(guardrail or ()),
                "surfaces": tuple(surface or ()),
                "description": description,
                "kind": kind,
            }
        spec = parse_spec(data, f"experiment {name!r}")
        _check_metrics(spec)
        spec = store.create(spec, s, _live_manifest(s.workspace))
    if as_json:
        out.print_json(json.dumps(spec.model_dump(mode="json")))
        return
    arms = ", ".join(f"{a.name} {a.weight:g}" for a in spec.arms)
    out.print(
        f"created experiment {spec.name} in layer {spec.layer} (buckets {spec.buckets}): {arms}",
        highlight=False,
    )


def _read_json(path: Path) -> dict[str, Any]:
    from moodboard.experiment.store import MAX_FILE_BYTES

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(
                f"--from-file {path} is over {MAX_FILE_BYTES} bytes: not an experiment."
            )
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--from-file {path} is not a readable JSON file: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--from-file {path} must hold one JSON object (an experiment).")
    return data


def _when(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} must be an ISO time like 2026-01-10 or 2026-01-10T08:00:00+00:00. "
            f"Got {text!r} instead."
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _check_metrics(spec: Any) -> None:
    from moodboard.experiment.metrics import METRICS

    unknown = [m for m in (*spec.metrics, *spec.guardrails) if m not in METRICS]
    if unknown:
        raise ConfigError(f"Unknown metrics {unknown}: choose among {', '.join(sorted(METRICS))}.")


@experiment_app.command("list")
def list_cmd(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """The experiments: layer, buckets, arms, status and window."""
    with _errors():
        _, store = _store(workspace)
        specs = store.load()
    if as_json:
        out.print_json(json.dumps([s.model_dump(mode="json") for s in specs]))
        return
    table = Table("name", "layer", "buckets", "arms", "status", "start", "stop")
    for s in specs:
        arms = ", ".join(f"{a.name} {a.weight:g}" for a in s.arms)
        table.add_row(
            s.name, s.layer, str(s.buckets), arms, s.status, str(s.start or "-"), str(s.stop or "-")
        )
    out.print(table)


@experiment_app.command("stop")
def stop_cmd(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    reason: Annotated[str, typer.Option(help="Why it stops (shown in its report).")] = "stopped",
    workspace: WorkspaceOpt = None,
) -> None:
    """Stop an experiment now: its shoppers see the configured engine again (a running server
    picks it up); its data and report stay."""
    with _errors():
        _, store = _store(workspace)
        spec = store.stop(name, reason)
    out.print(f"stopped experiment {spec.name} at {spec.stop}: {reason}", highlight=False)
