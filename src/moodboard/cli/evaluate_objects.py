"""``moodboard evaluate objects``: objects found in held-out composite photos, through the
workspace's served visual search chain."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, WorkspaceOpt, _errors, _settings, _workspace, err, out
from moodboard.cli.evaluate import evaluate_app


@evaluate_app.command("objects")
def evaluate_objects_cmd(
    workspace: WorkspaceOpt = None,
    photos: Annotated[
        int, typer.Option(min=1, max=10_000, help="Held-out composite photos of 2-4 products.")
    ] = 100,
    k: Annotated[int, typer.Option(min=1, max=50, help="Items per object's row.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the photos.")] = 0,
    version: Annotated[
        str | None, typer.Option(help="An artifact version [default: the live one]")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall of the pasted products at IoU 0.5, precision of the detections, the share of
    detected objects whose row holds the pasted product in its top k (vs the whole photo's
    results), and the share whose predicted category is right: photos of test-split products
    (never seen by the detector) sent to the live visual search chain without a crop."""
    from moodboard.evaluate.objects import evaluate_objects
    from moodboard.serve.registry import Engine

    with _errors():
        with err.status("loading the engine"):
            ws, settings = _workspace(workspace), _settings(workspace)
            visual = settings.surfaces.visual.model_copy(update={"object_items": k})
            surfaces = settings.surfaces.model_copy(update={"visual": visual})
            settings = settings.model_copy(update={"surfaces": surfaces})
            engine = Engine.load(ws, version, settings=settings)
        with err.status(f"searching {photos} photos"):
            report = evaluate_objects(engine.visual, photos, seed)
    report.params |= {"version": engine.version}
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    t = Table(title=f"objects in {report.photos} held-out photos ({report.pasted} products)")
    t.add_column("measure")
    t.add_column("value")
    for name, value in (
        ("recall of objects at IoU 0.5", report.recall_iou50),
        ("precision of detections at IoU 0.5", report.precision_iou50),
        (f"matched objects whose row has the product in its top {k}", report.found_in_row),
        (
            f"detected objects whose row has a pasted product in its top {k}",
            report.found_of_detected,
        ),
        (f"pasted products in the whole photo's top {k} (baseline)", report.whole_photo_found),
        ("detected objects whose category is right", report.category_accuracy),
    ):
        t.add_row(name, f"{value:.3f}")
    t.add_row("search per photo, p50 (ms)", f"{report.ms_p50:.1f}")
    out.print(t)
