"""Click models on the real Open Bandit random-policy logs, cross-validated."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.evaluate.open_bandit import (
    BanditEvalConfig,
    bandit_inputs,
    bandit_table,
    evaluate_click_models,
    multihead_click,
)
from moodboard.rank import MultiHeadConfig


@pytest.fixture(scope="module")
def table(datasets_root) -> pd.DataFrame:
    return bandit_table(datasets_root)


def test_the_three_random_campaigns_pool_into_one_table_of_shown_items(table) -> None:
    assert len(table) == 30_000 and int(table["click"].sum()) == 130
    assert table["item"].nunique() == 80 + 34 + 46  # the campaigns' items are not shared
    assert set(table["position"].unique()) == {1.0, 2.0, 3.0}


def test_cross_validation_scores_out_of_fold(table) -> None:
    """A model that memorizes its training rows scores 0.5 out of fold; one that reads a signal
    present in every row scores near 1: the folds do not leak."""
    rng = np.random.default_rng(0)
    signal = table.assign(noise=table["click"] + rng.normal(0, 0.3, len(table)))

    def memorize(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
        seen = dict(zip(train.index, y, strict=True))
        return np.array([seen.get(i, 0.5) * 0.9 + 0.05 for i in test.index])

    def reads_signal(train: pd.DataFrame, y: np.ndarray, test: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-(test["noise"].to_numpy() - 0.5) * 8))

    cfg = BanditEvalConfig(bootstrap=200)
    r = evaluate_click_models(signal, {"memorize": memorize, "signal": reads_signal}, cfg)
    assert r.models["memorize"]["auc"] == pytest.approx(0.5)
    assert r.models["signal"]["auc"] > 0.95
    lo, hi = r.models["signal"]["auc_ci"]
    assert lo <= r.models["signal"]["auc"] <= hi


def test_cli_reports_each_model_with_an_interval(monkeypatch, table) -> None:
    import moodboard.evaluate.open_bandit as ob

    monkeypatch.setattr(ob, "bandit_table", lambda: table)
    cmd = ["evaluate", "open-bandit", "--bootstrap", "200", "--json"]
    res = CliRunner().invoke(app, [*cmd, "--model", "logistic", "--model", "lightgbm"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["clicks"] == 130 and set(got["models"]) == {"logistic", "lightgbm"}
    for m in got["models"].values():
        assert 0.4 < m["auc"] < 0.75 and m["auc_ci"][0] <= m["auc"] <= m["auc_ci"][1]
        assert m["ece"] < 0.02  # the base rate is 0.4%: every model is close to it


def test_the_multihead_click_head_reads_the_rows_and_stays_calibrated(table) -> None:
    """The ranker's inputs of the bandit rows (item id, one-hot categories, numbers, the slot
    as the training-only position), and its click head cross-validated on a slice."""
    x = bandit_inputs(table.iloc[:5], table["click"].to_numpy()[:5])
    assert x.item.tolist() == table["item"].cat.codes[:5].tolist()
    assert x.position.tolist() == table["position"][:5].astype(int).tolist()
    assert "affinity" in x.dense_names and any(
        n.startswith("user_feature_0=") for n in x.dense_names
    )
    assert x.dense.sum(1).min() > 0 and (x.history_actions == 0).all()
    fast = MultiHeadConfig(sequence=False, max_history=1, dim=8, epochs=2, patience=1, seed=0)
    part = table.iloc[::5]
    r = evaluate_click_models(
        part, {"multihead": multihead_click(0, fast)}, BanditEvalConfig(bootstrap=100)
    )
    m = r.models["multihead"]
    assert 0.3 < m["auc"] < 0.8 and m["ece"] < 0.02 and m["logloss"] < 0.05
