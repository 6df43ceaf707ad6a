"""`moodboard evaluate search` on small judgment files: the JSON a script would read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.datasets import load_home_depot
from moodboard.evaluate.search import split_queries


def test_evaluate_search_json_shape(datasets_root, tmp_path: Path) -> None:
    df = load_home_depot()
    queries = sorted(df["search_term"].unique())[:300]
    small = df[df["search_term"].isin(queries)]
    train, test = split_queries(small, 0.3, 0)
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
            str(tmp_path / "work"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["methods"]) == {"bm25", "dense", "hybrid", "ltr"}
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
