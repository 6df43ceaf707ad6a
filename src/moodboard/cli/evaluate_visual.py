"""``moodboard evaluate visual``: 1-NN article type and precision@5 of held-out fashion
products' photos through the served visual chain, for the ImageNet features, the general
visual head and the head adapted to the catalog, in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, _errors, err, out
from moodboard.cli.evaluate import evaluate_app

_CACHE = Path("/tmp/moodboard-visual-cache")


@evaluate_app.command("visual")
def evaluate_visual_cmd(
    queries: Annotated[
        int, typer.Option(min=1, max=100_000, help="Held-out products asked (a seeded sample).")
    ] = 500,
    seed: Annotated[int, typer.Option(help="Seed of the sample and the photo-like views.")] = 16,
    cache: Annotated[
        Path, typer.Option(help="Backbone features cached by image content (clean and views).")
    ] = _CACHE,
    as_json: JsonOpt = False,
) -> None:
    """Visual search on the fashion catalog's held-out products (split by product id, seed
    fixed): their catalog shots and photo-like views (background pasted, cropped, rotated,
    relit, backgrounds the heads never saw) as uploads through the visual surface's chain;
    1-NN article type and precision@5, the query product itself excluded. Needs
    $MOODBOARD_DATASETS/fashion-product-images-small; a few minutes (features are cached)."""
    from moodboard.config import load_settings
    from moodboard.datasets import load_fashion
    from moodboard.evaluate.visual import KINDS, VARIANTS, VisualEvalConfig, evaluate_visual
    from moodboard.evaluate.visual_split import dataset_catalog

    with _errors():
        cfg = VisualEvalConfig(queries=queries, seed=seed)
        with err.status("loading the fashion catalog") as status:
            catalog = dataset_catalog(load_fashion())
            report = evaluate_visual(
                catalog, load_settings(), cfg, cache, None if as_json else status.update
            )
    if as_json:
        out.print_json(json.dumps(report))
        return
    k = report["k"]
    t = Table(
        title=f"visual search, served: {report['queries']} held-out queries, "
        f"{report['catalog']:,} products ({report['seconds']:.0f} s)"
    )
    for c in ("queries", "embedding", "1-NN article type", f"precision@{k}", "chain p50 ms"):
        t.add_column(c)
    for kind in KINDS:
        for name in VARIANTS:
            r = report["results"][kind].get(name)
            if r:
                t.add_row(kind, name, f"{r['nn1']:.4f}", f"{r[f'p@{k}']:.4f}", f"{r['ms_p50']}")
    out.print(t)
    if report["adapted"]:
        out.print(f"adapted head: {json.dumps(report['adapted'])}", highlight=False)
