"""``moodboard evaluate``: offline evaluation of search (and, later, recommendations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from moodboard.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _errors,
    _fail,
    _settings,
    _workspace,
    app,
    err,
    out,
)

evaluate_app = typer.Typer(
    help="Offline evaluation of search and recommendations.", no_args_is_help=True
)
app.add_typer(evaluate_app, name="evaluate")


def judgment_split(
    train: Path | None,
    test: Path | None,
    dataset: str | None,
    test_fraction: float,
    seed: int,
    sample: float,
) -> tuple[Any, Any]:
    """The (train, test) judgments of ``--train``/``--test`` files, or of ``--dataset
    home-depot`` split by query; ``sample`` keeps that share of the queries."""
    from moodboard.evaluate.judgments import read_judgments, sample_queries, split_queries

    if dataset is not None:
        if dataset != "home-depot":
            _fail(f"--dataset must be home-depot. Got {dataset!r} instead.")
        from moodboard.datasets import load_home_depot

        return split_queries(sample_queries(load_home_depot(), sample, seed), test_fraction, seed)
    if train is None or test is None:
        _fail("give --train and --test files, or --dataset home-depot")
    tr = sample_queries(read_judgments(train), sample, seed)  # type: ignore[arg-type]
    return tr, sample_queries(read_judgments(test), sample, seed)  # type: ignore[arg-type]


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
    sample: Annotated[
        float, typer.Option(help="Share of the queries kept, all judgments of each: a faster run.")
    ] = 1.0,
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
        judged_catalog_understanding,
    )

    with _errors():
        tr, te = judgment_split(train, test, dataset, test_fraction, seed, sample)
        cfg = SearchEvalConfig(seed=seed)
        if not finetune:
            cfg = cfg.model_copy(update={"finetune": None})
        qu = judged_catalog_understanding(tr, te) if understand else None
        with err.status("evaluating search") as status:
            report = SearchEvaluation(cfg, understand=qu, work_dir=work_dir).run(
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


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _chosen(method: str, params: dict[str, Any]) -> str:
    """What validation chose: a baseline's grid point, the fusion's weights, else defaults."""
    from moodboard.evaluate.recs import BASELINE_GRIDS

    if method == "ranked":
        return f"{params['trees']} trees, re-ranker {params['rerank_s']:.0f} s"
    if method == "fused":
        w = " ".join(
            f"{m}={x:g}" for m, x in zip(params["members"], params["weights"], strict=True)
        )
        return f"{w} rrf_k={params['rrf_k']:g}"
    grid = BASELINE_GRIDS.get(method)
    if grid is None:
        return "defaults"
    keys = sorted({k for point in grid for k in point})
    return " ".join(f"{k}={params[k]}" for k in keys if k in params)


@evaluate_app.command("recs")
def evaluate_recs_cmd(
    dataset: Annotated[
        str,
        typer.Option(help="amazon-beauty, amazon-sports, amazon-toys or online-retail."),
    ],
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated methods: popularity, als, ease, itemknn, the learned sources "
            "that exist (sequence, graph/walks, two_tower, user_interests), fused and ranked "
            "(the fused top 200 re-ranked by LambdaMART learned on the validation step) "
            "[default: all, fused and ranked when fused has 2 members]"
        ),
    ] = None,
    fuse: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated members of fused and ranked [default: the learned sources]"
        ),
    ] = None,
    max_users: Annotated[
        int | None, typer.Option(help="Evaluate a seeded random sample of this many users.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of every model.")] = 0,
    refit: Annotated[
        bool,
        typer.Option(
            help="Leave-one-out: fit the chosen configuration again on seq[:-1] before the "
            "test step (not the S3-Rec protocol, which tests the model fitted on seq[:-2])."
        ),
    ] = False,
    served: Annotated[
        bool,
        typer.Option(
            help="online-retail: build a workspace from the purchases before 2011-11-01 as "
            "`moodboard build` does, serve it, and score each customer's served /feed "
            "(Recall@20 of what they buy after, all items and new items) against EASE "
            "fitted on the same purchases."
        ),
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            help="--served: build the workspace here and keep it [default: a temporary folder]"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """HR@10 and NDCG@10 (and Recall@20, NDCG@20 on online-retail) of recommenders.

    Amazon: the S3-Rec leave-one-out protocol (tune on the second-to-last item, test once on
    the last, full ranking over all items without the history; ranked learns on the
    second-to-last item only). online-retail: fit on purchases before 2011-11-01, rank each
    customer's new items after it; with --served, the served home feed itself is scored (the
    build and the server's chain, not a copy).
    """
    if served:
        _served_recs(dataset, max_users, seed, work_dir, as_json)
        return
    from moodboard.evaluate.rec_protocol import load_split
    from moodboard.evaluate.recs import (
        FUSED,
        RANKED,
        RecEvaluation,
        baseline_factories,
        learned_factories,
    )

    with _errors():
        learned = learned_factories(seed)
        factories = {**baseline_factories(seed), **learned}
        members = _names(fuse) if fuse is not None else list(learned)
        wanted = _names(methods)
        if wanted is None:
            wanted = [*factories] + ([FUSED, RANKED] if len(members) >= 2 else [])
        split = load_split(dataset, max_users=max_users, seed=seed, refit=refit)
        with err.status(f"evaluating recommendations on {dataset}") as status:
            report = RecEvaluation(factories, fuse=members).run(
                split, wanted, progress=lambda m: status.update(m)
            )
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    names = report.metric_names()
    t = Table(title=f"{dataset}: {report.notes.get('users', 0):,} test users")
    for c in ("method", *names, "valid ndcg@10", "train s", "test s", "chosen"):
        t.add_column(c)
    for m, r in report.methods.items():
        chosen = _chosen(m, r.params)
        t.add_row(
            m,
            *(f"{r.test[n]:.4f}" for n in names),
            f"{r.valid['ndcg@10']:.4f}" if "ndcg@10" in r.valid else "-",
            f"{r.train_s:.1f}",
            f"{r.eval_s:.1f}",
            chosen,
        )
    out.print(t)


def _served_recs(
    dataset: str, max_users: int | None, seed: int, work_dir: Path | None, as_json: bool
) -> None:
    """``evaluate recs --served``: the served feed of Online Retail against EASE."""
    from moodboard.evaluate.served import evaluate_served, served_split

    with _errors():
        if dataset != "online-retail":
            _fail(f"--served measures online-retail only. Got --dataset {dataset!r} instead.")
        split = served_split(max_users=max_users, seed=seed)
        with err.status("evaluating the served feed on online-retail") as status:
            report = evaluate_served(
                split, _settings(None), work_dir=work_dir, progress=status.update
            )
    if as_json:
        out.print_json(json.dumps(report))
        return
    k = report["k"]
    t = Table(
        title=f"online-retail, served: {report['served']['users']:,} customers buying after "
        f"{report['cutoff']} ({report['served']['users_new']:,} with new items)"
    )
    for c in ("method", f"Recall@{k}", f"Recall@{k} new items"):
        t.add_column(c)
    metrics = (f"recall@{k}", f"recall@{k}_new")
    t.add_row("served /feed", *(f"{report['served'][m]:.4f}" for m in metrics))
    if "served_repeats" in report:
        row = (f"{report['served_repeats'][m]:.4f}" for m in metrics)
        t.add_row("served /feed, bought items allowed", *row)
    for l2, r in report["ease_grid"].items():
        t.add_row(f"ease (lambda {l2})", *(f"{r[m]:.4f}" for m in metrics))
    out.print(t)
    times = ", ".join(f"{n} {s:.0f} s" for n, s in report["timings_s"].items())
    out.print(f"feed fusion {report['build']['feed_fusion']}; {times}")


_BANDIT_MODELS = "logistic, lightgbm, multihead"


@evaluate_app.command("open-bandit")
def evaluate_open_bandit_cmd(
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    bootstrap: Annotated[int, typer.Option(help="Resamples of each AUC's interval.")] = 1_000,
    seed: Annotated[int, typer.Option(help="Seed of the folds, the bootstrap and the models.")] = 0,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="A model to run (repeat; default all): " + _BANDIT_MODELS),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Click AUC, log loss and ECE on the Open Bandit random-policy logs (all, men, women
    pooled; out-of-fold), with bootstrap intervals of the AUC."""
    from moodboard.evaluate.open_bandit import (
        BanditEvalConfig,
        bandit_table,
        evaluate_click_models,
        lightgbm_classifier,
        logistic_regression,
        multihead_click,
    )

    with _errors():
        cfg = BanditEvalConfig(folds=folds, bootstrap=bootstrap, seed=seed)
        known = {
            "logistic": logistic_regression,
            "lightgbm": lightgbm_classifier,
            "multihead": multihead_click,
        }
        unknown = sorted(set(models or ()) - set(known))
        if unknown:
            _fail(f"Unknown --model {unknown}: choose among {_BANDIT_MODELS}.")
        chosen = {n: make(seed) for n, make in known.items() if not models or n in models}
        report = evaluate_click_models(bandit_table(), chosen, cfg)
    if as_json:
        out.print_json(json.dumps(report.as_dict()))
        return
    t = Table(title=f"click prediction on {report.rows:,} impressions ({report.clicks} clicks)")
    for c in ("model", "AUC", "95% interval", "log loss", "ECE"):
        t.add_column(c)
    for name, m in report.models.items():
        lo, hi = m["auc_ci"]
        t.add_row(
            name,
            f"{m['auc']:.4f}",
            f"{lo:.3f} - {hi:.3f}",
            f"{m['logloss']:.4f}",
            f"{m['ece']:.4f}",
        )
    out.print(t)


@evaluate_app.command("ranker")
def evaluate_ranker_cmd(
    workspace: WorkspaceOpt = None,
    test_fraction: Annotated[float, typer.Option(help="Share of the newest rows scored.")] = 0.3,
    max_rows: Annotated[
        int | None, typer.Option(help="Use only the newest rows (a faster run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-head AUC, log loss and ECE of the multi-head ranker on the workspace's own logs
    (split by time), beside LightGBM per head, the network without the sequence input and the
    retrieval order."""
    from moodboard.evaluate.ranker import workspace_ranker_report

    with _errors():
        report = workspace_ranker_report(
            _workspace(workspace), _settings(workspace), test_fraction, max_rows
        )
    if as_json:
        out.print_json(json.dumps(report))
        return
    t = Table(title=f"ranker heads on {report['rows']['test']:,} later impressions")
    t.add_column("model")
    for head in report["heads"]:
        t.add_column(f"{head} AUC / ECE")
    models = {"multihead": report["heads"]} | {
        n: b["heads"] for n, b in report["baselines"].items()
    }
    for name, heads in models.items():
        t.add_row(name, *(f"{heads[h]['auc']:.3f} / {heads[h]['ece']:.3f}" for h in heads))
    out.print(t)
