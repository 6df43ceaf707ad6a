"""`moodboard evaluate search` on small judgment files: the JSON a script would read, and the
chains it scores with (the class `/search` serves)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.data import Request
from moodboard.datasets import load_home_depot
from moodboard.evaluate.search import (
    SearchEvalConfig,
    SearchEvaluation,
    judged_catalog_understanding,
    split_queries,
)
from moodboard.rank import LambdaMARTConfig
from moodboard.rank.metrics import mean_metrics
from moodboard.surfaces import Surface


@pytest.fixture(scope="module")
def small_split(datasets_root) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_home_depot()
    queries = sorted(df["search_term"].unique())[:150]
    return split_queries(df[df["search_term"].isin(queries)], 0.3, 0)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """One embedding cache for the module: the titles are embedded once."""
    return tmp_path_factory.mktemp("eval")


def test_evaluate_search_json_shape(small_split, work: Path, tmp_path: Path) -> None:
    train, test = small_split
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False, encoding="latin-1")
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "search",
            "--train",
            str(tmp_path / "train.csv"),
            "--test",
            str(tmp_path / "test.csv"),
            "--no-finetune",
            "--work-dir",
            str(work),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["methods"]) == {"bm25", "dense", "hybrid", "ltr"}
    assert "-> rank/lambdamart ->" in out["params"]["chains"]["ltr"]
    for m in out["methods"].values():
        assert 0 < m["ndcg@10"] <= 1 and 0 < m["mrr"] <= 1
    n_test = test.groupby("search_term")["relevance"].max().gt(1).sum()
    assert out["queries"] == n_test
    assert out["params"]["products"] == pd.concat([train, test])["product_uid"].nunique()


def test_evaluate_search_explains_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    res = CliRunner().invoke(app, ["evaluate", "search", "--train", str(bad), "--test", str(bad)])
    assert res.exit_code == 2 and "lacks the column" in res.output
    res = CliRunner().invoke(app, ["evaluate", "search"])
    assert res.exit_code == 2 and "--train" in res.output


@pytest.fixture(scope="module")
def small_eval(small_split, work: Path):
    train, test = small_split
    ltr = LambdaMARTConfig(n_estimators=30, min_data_in_leaf=5, depth=200)
    cfg = SearchEvalConfig(finetune=None, tune_queries=100, ltr=ltr)
    understand = judged_catalog_understanding(train, test)
    ev = SearchEvaluation(cfg, understand=understand, work_dir=work)
    return ev, ev.run(train, test)


def _page(chain: Surface, query: str, k: int = 10):
    return chain(Request(surface="search", query=query, k=k, explain=True))


def test_evaluate_search_scores_with_the_served_chain(small_eval) -> None:
    ev, report = small_eval
    assert set(ev.chains) == set(report.methods) == {"bm25", "dense", "hybrid", "ltr"}
    for method, chain in ev.chains.items():
        assert type(chain) is Surface, method
        for q, ranking in ev.rankings[method].items():
            assert [i.id for i in _page(chain, q).items] == ranking[:10], (method, q)
        assert mean_metrics(ev.rankings[method], ev.qrels)["ndcg@10"] == pytest.approx(
            report.methods[method]["ndcg@10"], abs=1e-4
        )
    q = next(iter(ev.rankings["ltr"]))
    stages = [(s.name, s.component) for s in _page(ev.chains["ltr"], q).stages]
    assert stages == [
        ("prepare", "prepare/search"),
        ("retrieve", "lexical/bm25"),
        ("retrieve", "dense/text"),
        ("fuse", f"fuse/{report.params['fusion']['method']}"),
        ("rank", "rank/lambdamart"),
        ("blend", "blend/boost"),
        ("fallback", "fallback/catalog"),
    ]
    assert ("rank", "rank/noop") in [
        (s.name, s.component) for s in _page(ev.chains["hybrid"], q).stages
    ]
    assert ev.rankings["ltr"] != ev.rankings["hybrid"]  # the rank stage re-orders the hybrid's


def test_a_price_phrase_does_not_empty_a_catalog_without_prices(small_eval) -> None:
    ev, _ = small_eval
    found = [i.explanation["sources"] for i in _page(ev.chains["bm25"], "cordless drill").items]
    assert found == [["lexical/bm25"]] * 10
    assert ev.understand("cordless drill under $40").price_max == 40
    for method in ("bm25", "ltr"):
        page = _page(ev.chains[method], "cordless drill under $40")
        plain = _page(ev.chains[method], "cordless drill")  # explanations hold NaN: not compared
        assert [(i.id, i.score) for i in page.items] == [(i.id, i.score) for i in plain.items], (
            method
        )
