"""The per-head ranker evaluation on seeded synthetic impressions with known click rates, and
on the mini engine's own logs."""

from __future__ import annotations

import numpy as np
import pytest

from mini import mini_settings
from moodboard.evaluate.ranker import evaluate_rankers, history_summary, workspace_ranker_report
from moodboard.ingest import Workspace
from moodboard.rank.inputs import HEADS, MultiHeadInputs


def _rows(n: int, seed: int) -> tuple[MultiHeadInputs, np.ndarray]:
    """Impressions whose click probability depends on a dense feature and the position."""
    rng = np.random.default_rng(seed)
    hist = rng.integers(-1, 50, (n, 8))
    actions = np.where(hist >= 0, rng.integers(1, 6, (n, 8)), 0)
    quality = rng.normal(size=n).astype(np.float32)
    position = rng.integers(1, 25, n)
    p_click = 1 / (1 + np.exp(-(quality * 1.5 - 2.0 - 0.03 * position)))
    labels = np.zeros((n, len(HEADS)), np.float32)
    labels[:, 0] = rng.random(n) < p_click
    labels[:, 1] = labels[:, 0] * (rng.random(n) < 0.3)
    labels[:, 4] = rng.random(n) < 0.02
    x = MultiHeadInputs(
        history_items=hist.astype(np.int64),
        history_actions=actions.astype(np.int64),
        history_age_s=np.where(hist >= 0, rng.exponential(3600, (n, 8)), 0).astype(np.float32),
        item=rng.integers(0, 50, n).astype(np.int64),
        dense=np.column_stack([quality, rng.normal(size=n)]).astype(np.float32),
        dense_names=("quality", "noise"),
        position=position.astype(np.int64),
        labels=labels,
    )
    return x, p_click


@pytest.fixture(scope="module")
def report() -> dict:
    train, _ = _rows(6_000, 0)
    test, truth = _rows(3_000, 1)

    def oracle(tr: MultiHeadInputs, te: MultiHeadInputs) -> np.ndarray:
        out = np.full((len(te), len(HEADS)), 0.02)
        out[:, 0] = truth
        return out

    return evaluate_rankers(train, test, oracle)


def test_the_report_has_every_head_of_the_model_and_of_each_baseline(report) -> None:
    assert set(report["heads"]) == set(HEADS)
    assert set(report["baselines"]) == {"lightgbm", "retrieval_order"}
    for b in report["baselines"].values():
        assert set(b["heads"]) == set(HEADS)
        assert set(b["heads"]["click"]) == {"auc", "logloss", "ece"}
    assert report["rows"]["train"] == 6_000 and report["rows"]["test"] == 3_000


def test_true_probabilities_win_and_are_calibrated(report) -> None:
    click = report["heads"]["click"]
    lgbm = report["baselines"]["lightgbm"]["heads"]["click"]
    order = report["baselines"]["retrieval_order"]["heads"]["click"]
    assert click["auc"] >= lgbm["auc"] - 0.01 and click["ece"] < 0.03
    assert lgbm["auc"] > order["auc"] + 0.1  # the signal is in a feature, not the order
    assert order["auc"] == pytest.approx(0.5)  # no retrieval score logged: a random order


def test_history_summary_counts_actions_and_sees_the_candidate() -> None:
    x, _ = _rows(5, 3)
    items = x.history_items.copy()
    items[0, 2] = x.item[0]
    acts = x.history_actions.copy()
    acts[0, 2] = 2  # a save of the candidate itself
    x = MultiHeadInputs(**{**x.__dict__, "history_items": items, "history_actions": acts})
    summary, names = history_summary(x)
    assert summary[0, names.index("candidate_save")] == 1
    assert summary[:, names.index("history_click")].tolist() == (acts == 1).sum(1).tolist()


def test_on_the_engines_own_logs_the_sequence_lifts_the_click_head_over_its_baselines(
    mini_engine: Workspace,
) -> None:
    # the mini engine's simulated shoppers, served by the engine (32,138 labelled impressions,
    # 9,641 later ones scored); measured: click AUC 0.593 against LightGBM 0.578, the same
    # network without the sequence (nor the personal features, which read it) 0.509 and the
    # retrieval order 0.5; click ECE 0.0054 (before the personal features: 0.564, 0.554, 0.509)
    report = workspace_ranker_report(mini_engine, mini_settings())
    click = report["heads"]["click"]
    others = {name: b["heads"]["click"]["auc"] for name, b in report["baselines"].items()}
    assert click["auc"] > 0.57
    assert click["auc"] > others["retrieval_order"] + 0.03
    assert click["auc"] > others["no_sequence"] + 0.02  # the ablation in the same run
    assert click["auc"] > others["lightgbm"] - 0.01
    assert click["ece"] < 0.02
    assert report["rows"]["test"] > 5_000 and report["rows"]["test_positives"]["click"] > 200
