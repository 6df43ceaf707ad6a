"""``moodboard evaluate``: offline evaluation of search (and, later, recommendations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from moodboard.cli.common import JsonOpt, _errors, _fail, app, err, out

evaluate_app = typer.Typer(
    help="Offline evaluation of search and recommendations.", no_args_is_help=True
)
app.add_typer(evaluate_app, name="evaluate")


@evaluate_app.command("search")
def evaluate_search_cmd(
    train: Annotated[Path | None, typer.Option(help="Judgments to learn from.")] = None,
    test: Annotated[Path | None, typer.Option(help="Judgments to measure on.")] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="Split a public dataset instead of --train/--test: home-depot."),
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Query share held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split and the learners.")] = 0,
    finetune: Annotated[
        bool, typer.Option(help="Fine-tune the text encoder on the training judgments.")
    ] = True,
    understand: Annotated[
        bool,
        typer.Option(help="Query understanding (spelling) before retrieval, for every method."),
    ] = True,
    work_dir: Annotated[
        Path | None,
        typer.Option(help="Embedding cache and tuned model [default: a temporary folder]"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """NDCG@10 and MRR of bm25, dense, hybrid and ltr on graded judgments (Home Depot layout).

    Ranking is over all indexed products; learning uses --train only.
    """
    from moodboard.evaluate.search import (
        SearchEvalConfig,
        SearchEvaluation,
        judged_catalog_rewriter,
        read_judgments,
        split_queries,
    )

    with _errors():
        if dataset is not None:
            if dataset != "home-depot":
                _fail(f"--dataset must be home-depot. Got {dataset!r} instead.")
            from moodboard.datasets import load_home_depot

            tr, te = split_queries(load_home_depot(), test_fraction, seed)
        elif train is not None and test is not None:
            tr, te = read_judgments(train), read_judgments(test)
        else:
            _fail("give --train and --test files, or --dataset home-depot")
        cfg = SearchEvalConfig(seed=seed)
        if not finetune:
            cfg = cfg.model_copy(update={"finetune": None})
        rewrite = judged_catalog_rewriter(tr, te) if understand else None
        with err.status("evaluating search") as status:
            report = SearchEvaluation(cfg, rewrite=rewrite, work_dir=work_dir).run(
                tr, te, progress=lambda m: status.update(m) if not as_json else None
            )
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    t = Table(
        title=f"search on {report.queries:,} test queries ({report.left_out} left out: "
        "all judged gains 0)"
    )
    for c in ("method", "NDCG@10", "MRR"):
        t.add_column(c)
    for m, r in report.methods.items():
        t.add_row(m, f"{r['ndcg@10']:.4f}", f"{r['mrr']:.4f}")
    out.print(t)
