"""``moodboard evaluate text-image`` and ``moodboard evaluate composed``: text to image
retrieval of held-out products, and photo + colour queries, through a workspace's live
version."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _settings, _workspace, err, out
from moodboard.cli.evaluate import evaluate_app

SeedOpt = Annotated[int, typer.Option(help="Seed of the sample.")]
VersionOpt = Annotated[str | None, typer.Option(help="An artifact version [default: the live one]")]


def _table(title: str, methods: dict[str, dict[str, float]]) -> Table:
    t = Table(title=title)
    cols = list(next(iter(methods.values())))
    for c in ("method", *cols):
        t.add_column(c)
    for name, r in methods.items():
        t.add_row(name, *(f"{r[c]:.4f}" if c != "ms_per_query" else f"{r[c]:.1f}" for c in cols))
    return t


def _engine(workspace: Any, version: str | None) -> Any:
    from moodboard.serve.registry import Engine

    ws = _workspace(workspace)
    return ws, Engine.load(ws, version, settings=_settings(workspace))


@evaluate_app.command("text-image")
def evaluate_text_image_cmd(
    workspace: WorkspaceOpt = None,
    held_out: Annotated[
        float, typer.Option(min=0.01, max=0.5, help="Share of the products with an image.")
    ] = 0.1,
    max_queries: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    seed: SeedOpt = 0,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall@10 of held-out products' images from their titles (dense/text_image, its head
    trained without them) against today's text-only dense/text, and attribute precision."""
    from moodboard.evaluate.text_image import TextImageEvalConfig, text_image_recall
    from moodboard.understand.cache import EmbeddingCache

    with _errors():
        cfg = TextImageEvalConfig(held_out=held_out, max_queries=max_queries, seed=seed)
        with err.status("loading the engine") as status:
            ws, engine = _engine(workspace, version)
            enc = engine.text_encoder
            cache = EmbeddingCache(ws.root / "cache" / "embeddings", enc.dim, enc.cache_name)
            report = text_image_recall(
                engine, cfg, progress=None if as_json else status.update, cache=cache
            )
    report.params |= {"version": engine.version}
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    head = report.head
    out.print(
        _table(
            f"text to image: {report.queries:,} held-out titles (head: {head.get('pairs')} "
            f"pairs, {head.get('epochs')} epochs, {head.get('train_seconds')} s)",
            report.methods,
        )
    )


@evaluate_app.command("composed")
def evaluate_composed_cmd(
    workspace: WorkspaceOpt = None,
    pairs: Annotated[int, typer.Option(min=1, max=10_000, help="Pairs sampled.")] = 200,
    min_items: Annotated[
        int, typer.Option(min=1, help="Products B's colour needs in A's type and gender.")
    ] = 10,
    seed: SeedOpt = 0,
    version: VersionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision@10 of "this photo, in <colour>" over pairs of products that differ by colour
    only: the photo alone, the colour alone, and both (through the served chains)."""
    from moodboard.evaluate.composed import ComposedEvalConfig, composed_precision

    with _errors():
        cfg = ComposedEvalConfig(pairs=pairs, min_items=min_items, seed=seed)
        with err.status("loading the engine") as status:
            _, engine = _engine(workspace, version)
            report = composed_precision(engine, cfg, progress=None if as_json else status.update)
    report.params |= {"version": engine.version}
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    out.print(_table(f"composed queries: {report.pairs} colour pairs", report.methods))
