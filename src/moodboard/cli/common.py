"""What every ``moodboard`` verb shares: the typer apps, consoles, options, error handling."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from moodboard.config import Settings, load_settings
from moodboard.errors import MoodboardError, NotBuiltError

app = typer.Typer(
    help="moodboard: a discovery engine for shopping catalogs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ingest_app = typer.Typer(
    help="Store catalog and event files in the workspace.", no_args_is_help=True
)
validate_app = typer.Typer(
    help="Run the named checks on a file without storing it.", no_args_is_help=True
)
app.add_typer(ingest_app, name="ingest")
app.add_typer(validate_app, name="validate")

out = Console()
err = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder [default: $MOODBOARD_WORKSPACE or ./moodboard-workspace]",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
MapOpt = Annotated[list[str] | None, typer.Option("--map", help="COLUMN=field, repeatable.")]


def _settings(workspace: Path | None) -> Settings:
    return load_settings(workspace=workspace)


def _workspace(workspace: Path | None):
    from moodboard.ingest import Workspace

    return Workspace(_settings(workspace).workspace)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except NotBuiltError as e:
        _fail(str(e))
    except MoodboardError as e:
        _fail(str(e))


@contextmanager
def progress_bar(
    label: str, total: int | None = None, quiet: bool = False
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    if quiet:
        yield lambda n: None
        return
    cols = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*cols, console=err, transient=True) as p:
        task = p.add_task(label, total=total)
        yield lambda n: p.advance(task, n)


def _report(report: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
    else:
        out.print(report.summary(), highlight=False)
        if report.quarantine_file:
            err.print(f"quarantined rows and reasons: {report.quarantine_file}", highlight=False)


def print_arms(result: dict[str, Any], title: str) -> None:
    """A comparison's arms as a table (one row per arm, one column per metric) and each paired
    difference with its 95% interval (``result``: ``{"arms": ..., "diffs": ...}``)."""
    from rich.table import Table

    metrics = list(next(iter(result["arms"].values())))
    t = Table(title=title)
    t.add_column("arm")
    for m in metrics:
        t.add_column(m.replace("_", " "), justify="right")
    for name, values in result["arms"].items():
        t.add_row(name, *(f"{values[m]:.4f}" for m in metrics))
    out.print(t)
    for pair, diff in result["diffs"].items():
        for m, d in diff.items():
            lo, hi = d["ci"]
            out.print(f"{pair}: {m} {d['estimate']:+.4f} [{lo:+.4f}, {hi:+.4f}]", highlight=False)
