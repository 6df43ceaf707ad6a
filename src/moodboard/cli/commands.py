"""The ``moodboard`` verbs, one per stage: ingest, validate, status, build, serve, bench,
experiment (``simulate`` and ``demo`` are in ``cli.simulate``, ``evaluate`` in
``cli.evaluate``)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from moodboard.cli.common import (
    JsonOpt,
    MapOpt,
    WorkspaceOpt,
    _errors,
    _fail,
    _report,
    _settings,
    _workspace,
    app,
    err,
    ingest_app,
    out,
    progress_bar,
    validate_app,
)


@ingest_app.command("catalog")
def ingest_catalog_cmd(
    path: Path, workspace: WorkspaceOpt = None, as_json: JsonOpt = False, map_: MapOpt = None
) -> None:
    """Ingest a catalog file (CSV, JSONL or Parquet); products are upserted by id."""
    from moodboard.ingest import ingest_catalog, parse_mapping

    s = _settings(workspace)
    with _errors(), progress_bar(f"catalog {path.name}", quiet=as_json) as adv:
        report = ingest_catalog(
            _workspace(workspace),
            path,
            parse_mapping(map_ or []),
            chunk_rows=s.ingest.chunk_rows,
            check_images=s.ingest.check_images,
            media_roots=s.ingest.media_roots,
            progress=adv,
        )
    _report(report, as_json)


@ingest_app.command("events")
def ingest_events_cmd(
    path: Path,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    map_: MapOpt = None,
    chunk_rows: Annotated[int | None, typer.Option(help="Rows committed at a time.")] = None,
) -> None:
    """Ingest an event file; events are deduplicated by event_id."""
    from moodboard.ingest import ingest_events, parse_mapping

    s = _settings(workspace)
    with _errors(), progress_bar(f"events {path.name}", quiet=as_json) as adv:
        report = ingest_events(
            _workspace(workspace),
            path,
            parse_mapping(map_ or []),
            chunk_rows=chunk_rows or s.ingest.chunk_rows,
            progress=adv,
            limits=s.ingest,
        )
    _report(report, as_json)


@ingest_app.command("dataset")
def ingest_dataset_cmd(name: str, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Load a public dataset from $MOODBOARD_DATASETS (fashion, online-retail)."""
    from moodboard.datasets import ingest_dataset

    with _errors(), progress_bar(f"dataset {name}", quiet=as_json) as adv:
        reports = ingest_dataset(_workspace(workspace), name, progress=adv)
    if as_json:
        out.print_json(json.dumps({k: r.as_dict() for k, r in reports.items()}))
    else:
        for kind, r in reports.items():
            out.print(f"{kind}: {r.summary()}", highlight=False)


def _validate(
    kind: str, path: Path, workspace: Path | None, map_: list[str] | None, as_json: bool
) -> None:
    from moodboard.ingest import parse_mapping, validate

    with _errors():
        read, results = validate(
            _workspace(workspace),
            kind,
            path,
            parse_mapping(map_ or []),
            limits=_settings(workspace).ingest,
        )
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "read": read,
                    "checks": {
                        r.name: {
                            "passed": r.passed,
                            "failed": r.failed,
                            "examples": list(r.examples),
                        }
                        for r in results
                    },
                }
            )
        )
    else:
        for r in results:
            status = "PASS" if r.passed else "FAIL"
            ex = f"  rows {', '.join(map(str, r.examples))}" if r.examples else ""
            out.print(f"{r.name} {status} {r.failed}{ex}", highlight=False)
        out.print(f"read {read}", highlight=False)
    if any(not r.passed for r in results):
        raise typer.Exit(1)


@validate_app.command("events")
def validate_events_cmd(
    path: Path, workspace: WorkspaceOpt = None, map_: MapOpt = None, as_json: JsonOpt = False
) -> None:
    """Check an event file: prints '<check> PASS|FAIL count' (exit 1 if any check fails)."""
    _validate("events", path, workspace, map_, as_json)


@validate_app.command("catalog")
def validate_catalog_cmd(
    path: Path, workspace: WorkspaceOpt = None, map_: MapOpt = None, as_json: JsonOpt = False
) -> None:
    """Check a catalog file: prints '<check> PASS|FAIL count' (exit 1 if any check fails)."""
    _validate("catalog", path, workspace, map_, as_json)


def print_status(status: dict[str, Any]) -> None:
    """The workspace summary as a table."""
    t = Table(title="workspace", show_header=False)
    for key in ("products", "users", "boards"):
        t.add_row(key, f"{status[key]:,}")
    for typ, n in status["events"].items():
        t.add_row(f"events: {typ}", f"{n:,}")
    t.add_row("events total", f"{status['events_total']:,}")
    if status.get("events_pending"):
        t.add_row("events in the WAL, not compacted yet", f"{status['events_pending']:,}")
    if status.get("impressions_dropped"):
        t.add_row("impressions a server failed to log", f"{status['impressions_dropped']:,}")
    t.add_row("artifact", str(status["artifact"]))
    if status.get("bots"):
        bots = status["bots"]
        rules = ", ".join(f"{r} {n:,}" for r, n in bots["by_rule"].items() if n)
        filtered = f"{bots['flagged']:,}" + (f" ({rules})" if rules else "")
        t.add_row("accounts filtered as bots", filtered if bots["enabled"] else "off")
    out.print(t)


@app.command()
def status(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Counts of products, users, boards and events by type (``events_pending``: accepted by
    a server, still in its WAL), the live artifact, and how many accounts its build filtered
    as bots, by rule (``bots``)."""
    from moodboard.build.layout import read_manifest
    from moodboard.ingest.walread import pending_count
    from moodboard.serve.dropped import dropped_impressions

    with _errors():
        ws = _workspace(workspace)
        st = ws.status()
        st["events_pending"] = pending_count(ws) if ws.exists() else 0
        st["impressions_dropped"] = dropped_impressions(ws.root)
        if st["artifact"]:
            bots = read_manifest(ws.version_path(st["artifact"])).get("bots")
            if bots is not None:
                st["bots"] = bots
    if as_json:
        out.print_json(json.dumps(st))
    else:
        print_status(st)


@app.command()
def build(
    workspace: WorkspaceOpt = None,
    engine: Annotated[
        str, typer.Option(help="Where the engagement pipelines run: duckdb or spark.")
    ] = "duckdb",
    as_json: JsonOpt = False,
) -> None:
    """Build a new artifact version (indexes, models, manifest) and make it live."""
    from moodboard.build import build as build_artifact

    if engine not in ("duckdb", "spark"):
        _fail(f"--engine must be duckdb or spark. Got {engine!r} instead.")
    ws = _workspace(workspace)
    with _errors(), err.status("building") as status:
        manifest = build_artifact(ws, say=lambda m: status.update(m), engine=engine)
    if as_json:
        out.print_json(json.dumps(manifest))
    else:
        out.print(
            f"built {manifest['version']} (live): "
            + ", ".join(f"{k} {v}s" for k, v in manifest["timings_s"].items()),
            highlight=False,
        )


@app.command()
def serve(workspace: WorkspaceOpt = None, host: str | None = None, port: int | None = None) -> None:
    """Serve the API and the web app (loads the live artifact; swaps when a build flips it)."""
    _serve(_settings(workspace), _workspace(workspace), host, port)


def _serve(s: Any, ws: Any, host: str | None, port: int | None) -> None:
    import uvicorn

    from moodboard.serve.app import create_app

    host, port = host or s.serve.host, port or s.serve.port
    if s.serve.torch_threads is not None:
        import torch

        torch.set_num_threads(s.serve.torch_threads)
    with _errors():
        if not ws.exists():
            _fail(f"{ws.root} is not a workspace yet: run `moodboard ingest catalog` first.")
        application = create_app(ws.root, s)
    err.print(f"moodboard is serving {ws.root} at http://{host}:{port}", highlight=False)
    keys_file = application.state.guard.keys.file
    if keys_file is not None:
        err.print(
            f"the server keys not set in serve.* (admin, write, public) are in {keys_file}",
            highlight=False,
        )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)


@app.command()
def bench() -> None:
    """Run the benchmarks under bench/ (use `make bench`)."""
    _fail(
        "run the benchmarks with `make bench` (scripts under bench/ print a table and write JSON)"
    )


def main() -> None:
    """Entry point with logging to stderr."""
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    app()


if __name__ == "__main__":
    main()
