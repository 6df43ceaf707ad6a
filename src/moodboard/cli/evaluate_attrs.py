"""``moodboard evaluate attributes``: precision@10 of attribute queries ("red dress", "navy
blue shirt for men") through a workspace's served search chain."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _settings, _workspace, err, out
from moodboard.cli.evaluate import evaluate_app


@evaluate_app.command("attributes")
def evaluate_attributes_cmd(
    workspace: WorkspaceOpt = None,
    combos: Annotated[
        int,
        typer.Option(
            min=1, max=10_000, help="Attribute combinations sampled (each phrased several ways)."
        ),
    ] = 200,
    min_items: Annotated[
        int,
        typer.Option(min=1, help="A combination needs at least this many matching products."),
    ] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the sample, split and phrasings.")] = 0,
    version: Annotated[
        str | None, typer.Option(help="An artifact version [default: the live one]")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision@10 of queries built from the catalog's colour, article type, gender and usage
    combinations, overall and per phrasing kind (canonical, plural, gender word, synonym,
    held-out synonym), ranked by the workspace's live search chain (what /search serves)."""
    from moodboard.evaluate.attributes import (
        AttributeEvalConfig,
        attribute_precision,
        attribute_queries,
    )
    from moodboard.serve.registry import Engine

    with _errors():
        cfg = AttributeEvalConfig(combos=combos, min_items=min_items, seed=seed)
        with err.status("loading the engine") as status:
            ws, settings = _workspace(workspace), _settings(workspace)
            engine = Engine.load(ws, version, settings=settings)
            queries = attribute_queries(engine.catalog, cfg)
            report = attribute_precision(
                engine.search, queries, cfg.k, progress=None if as_json else status.update
            )
    report.params |= {"version": engine.version, "seed": seed, "min_items": min_items}
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    t = Table(
        title=f"attribute queries: precision@{report.k} {report.overall:.4f} "
        f"({report.queries:,} queries, {report.combos} combinations)"
    )
    for c in ("group", "precision@10", "queries"):
        t.add_column(c)
    for prefix, groups in (
        ("kind", report.by_kind),
        ("split", report.by_split),
        ("attributes", report.by_size),
    ):
        for name, r in groups.items():
            t.add_row(f"{prefix} {name}", f"{r['precision']:.4f}", str(r["queries"]))
    out.print(t)
    for w in [w for w in report.worst if w["precision"] < 1][:10]:
        out.print(
            f"{w['precision']:.1f}  {w['query']!r} ({w['kind']}; {w['wanted']}): "
            f"first {', '.join(w['first'])}",
            highlight=False,
        )
