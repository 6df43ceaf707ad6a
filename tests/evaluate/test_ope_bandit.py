"""BTS's click rate from the Open Bandit random logs (campaign "all"), through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.datasets import load_open_bandit
from moodboard.evaluate.ope import ESTIMATORS
from moodboard.evaluate.ope_bandit import (
    OBP_PUBLISHED,
    OpenBanditOPEConfig,
    load_open_bandit_logs,
    relative_error_runs,
)
from moodboard.evaluate.ope_bts import bts_action_dist, zozotown_prior

N_SIM = 100_000


@pytest.fixture(scope="module")
def report(datasets_root) -> dict:
    """``moodboard evaluate ope --dataset open-bandit --json`` on "all" (1,000 resamples)."""
    cmd = ["evaluate", "ope", "--dataset", "open-bandit", "--campaign", "all"]
    res = CliRunner().invoke(app, [*cmd, "--n-sim", str(N_SIM), "--bootstrap", "1000", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def test_json_names_each_estimator_with_its_interval_and_error(report: dict) -> None:
    assert set(report["estimators"]) == set(ESTIMATORS)
    for name, r in report["estimators"].items():
        lo, hi = r["ci"]
        assert lo <= r["estimate"] <= hi, name
        assert r["relative_error"] == pytest.approx(
            abs(r["estimate"] - report["on_policy"]) / report["on_policy"]
        )
    assert "tau" in report["estimators"]["switch-dr"]
    assert "lambda" in report["estimators"]["dr-os"]
    assert report["selected"] in ESTIMATORS
    assert report["obp_published"] == OBP_PUBLISHED
    assert report["params"]["n_sim"] == N_SIM
    cfg = OpenBanditOPEConfig.model_validate(report["params"])  # the run's config, inf included
    assert cfg.n_sim == N_SIM and cfg.ope.taus[-1] == float("inf")


def test_estimates_are_close_to_bts_on_policy_rate(report: dict, datasets_root) -> None:
    """The truth is BTS's own mean click (42 in 10,000); IPW is the hand-computable one; with
    38 clicks every estimate is noisy, but the selected interval holds the truth and no
    estimator is off by half (obp published 0.16-0.31 mean relative errors)."""
    assert report["on_policy"] == pytest.approx(42 / 10_000)
    assert report["clicks"] == 38 and report["rows"] == 10_000
    log = load_open_bandit("random", "all", datasets_root).log
    dist = bts_action_dist(*zozotown_prior("all"), len_list=3, n_sim=N_SIM, seed=12345)
    w = dist[log["item_id"], log["position"] - 1] / log["propensity_score"]
    assert report["estimators"]["ipw"]["estimate"] == pytest.approx(np.mean(log["click"] * w))
    lo, hi = report["estimators"][report["selected"]]["ci"]
    assert lo <= report["on_policy"] <= hi
    assert max(r["relative_error"] for r in report["estimators"].values()) < 0.5


def test_cli_table_marks_the_selected_estimator(report: dict, monkeypatch) -> None:
    import moodboard.evaluate.ope_bandit as ob

    monkeypatch.setattr(
        ob, "evaluate_open_bandit", lambda cfg, runs: ob.OpenBanditOPEReport(**report)
    )
    res = CliRunner().invoke(app, ["evaluate", "ope", "--dataset", "open-bandit"])
    assert res.exit_code == 0, res.output
    assert (
        f"on-policy {report['on_policy']:.5f}" in res.output
        and "published mean error" in res.output
    )
    selected = next(line for line in res.output.splitlines() if " * " in line)
    assert selected.split()[1] == report["selected"]
    lo, hi = report["estimators"][report["selected"]]["ci"]
    assert f"{lo:.5f}-{hi:.5f}" in selected


def test_cli_bad_options_say_what_to_fix() -> None:
    def run(*args: str):
        return CliRunner().invoke(app, ["evaluate", "ope", *args])

    res = run("--dataset", "criteo")
    assert res.exit_code == 2 and "--dataset must be open-bandit" in res.output
    res = run("--dataset", "open-bandit", "--campaign", "kids")
    assert res.exit_code == 2 and "--campaign must be all, men or women" in res.output
    res = run("--dataset", "open-bandit", "--bootstrap", "5")
    assert res.exit_code == 2 and "n_bootstrap" in res.output


def test_obps_protocol_resamples_the_rounds_of_each_run(datasets_root) -> None:
    """Run b resamples the rounds with RandomState(b).choice, as obp's
    sample_bootstrap_bandit_feedback(random_state=b); ipw's errors are checkable by hand."""
    cfg = OpenBanditOPEConfig(n_sim=20_000)
    logs = load_open_bandit_logs(cfg, datasets_root)
    got = relative_error_runs(logs, cfg, runs=2)
    assert set(got) == set(ESTIMATORS)
    n, errors = len(logs.reward), []
    for b in range(2):
        rows = np.random.RandomState(b).choice(np.arange(n), size=n, replace=True)
        w = logs.bts_dist[logs.action[rows], logs.position[rows]] / logs.pscore[rows]
        errors.append(abs(np.mean(logs.reward[rows] * w) - logs.on_policy) / logs.on_policy)
    assert got["ipw"]["mean"] == pytest.approx(np.mean(errors))
    assert got["ipw"]["std"] == pytest.approx(np.std(errors, ddof=1))
