"""``moodboard evaluate autocomplete``: completions against the most popular completion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, _errors, _settings, err, out
from moodboard.cli.evaluate import evaluate_app, judgment_split


@evaluate_app.command("autocomplete")
def evaluate_autocomplete_cmd(
    train: Annotated[Path | None, typer.Option(help="Judgments whose queries are the log.")] = None,
    test: Annotated[Path | None, typer.Option(help="Judgments whose queries are typed.")] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="Split a public dataset instead of --train/--test: home-depot."),
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Query share held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    sample: Annotated[
        float, typer.Option(help="Share of the queries kept, all judgments of each: a faster run.")
    ] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """MRR@8 and success@8 of autocomplete and the most-popular-completion baseline (mpc) per
    prefix length 1..5, on files in the Home Depot layout: the training queries are the log,
    the catalog is the union of both files' product titles."""
    from moodboard.evaluate.autocomplete import evaluate_autocomplete

    with _errors():
        tr, te = judgment_split(train, test, dataset, test_fraction, seed, sample)
        with err.status("evaluating autocomplete"):
            report = evaluate_autocomplete(tr, te, _settings(None).autocomplete)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    k = report.k
    lengths = list(report.methods["ours"]["by_prefix"])
    t = Table(title=f"autocomplete on {report.queries:,} test queries (MRR@{k} / success@{k})")
    for c in ("method", "mean", *(f"prefix {n}" for n in lengths)):
        t.add_column(c)
    for name, r in report.methods.items():
        by = r["by_prefix"]
        cells = (f"{by[n][f'mrr@{k}']:.4f} / {by[n][f'success@{k}']:.3f}" for n in lengths)
        t.add_row(name, f"{r[f'mrr@{k}']:.4f} / {r[f'success@{k}']:.3f}", *cells)
    out.print(t)
    ratio = report.methods["ours"][f"mrr@{k}"] / max(report.methods["mpc"][f"mrr@{k}"], 1e-12)
    out.print(f"ours / mpc MRR@{k}: {ratio:.2f}x; timings {report.timings_s}")
