"""The analysis of a hand-made experiment log whose truth is known: the effects equal scipy's
and statsmodels' on the per-shopper values, the guardrail that was planted to cross stops the
experiment, and a planted SRM blocks the verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from experiment_log import END, EXP, experiment_workspace
from moodboard.config import Settings
from moodboard.experiment.run import report_experiment
from moodboard.experiment.store import ExperimentStore


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory):
    ws, truth = experiment_workspace(tmp_path_factory.mktemp("exp") / "ws")
    files = report_experiment(ws, EXP, Settings(), as_of=END)
    return ws, truth, files


def _row(result: dict, metric: str) -> dict:
    return next(r for r in result["metrics"] if r["metric"] == metric and r["arm"] == "treat")


def test_exposures_and_srm(reported) -> None:
    _, truth, files = reported
    result = files.analysis
    assert result["exposures"] == {
        "control": int((truth.arms == "control").sum()),
        "treat": int((truth.arms == "treat").sum()),
    }
    assert result["srm"]["passed"]


def test_mean_effect_equals_scipy_welch(reported) -> None:
    _, truth, files = reported
    row = _row(files.analysis, "clicks_per_user")
    c, t = truth.clicks[truth.arms == "control"], truth.clicks[truth.arms == "treat"]
    ref = stats.ttest_ind(t, c, equal_var=False)
    assert row["effect"] == pytest.approx(t.mean() - c.mean(), rel=1e-9)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    ci = ref.confidence_interval(0.95)
    assert row["ci"] == pytest.approx([ci.low, ci.high], rel=1e-6)
    # the always-valid interval is wider than the fixed-horizon one
    assert row["sequential_ci"][0] < row["ci"][0] and row["sequential_ci"][1] > row["ci"][1]


def test_cuped_equals_ols_with_the_pre_period_and_shrinks_the_interval(reported) -> None:
    _, truth, files = reported
    row = _row(files.analysis, "clicks_per_user")
    treat = (truth.arms == "treat").astype(float)
    x = np.column_stack([np.ones_like(treat), treat, truth.pre_clicks - truth.pre_clicks.mean()])
    fit = sm.OLS(truth.clicks.astype(float), x).fit()
    assert row["cuped"]["effect"] == pytest.approx(fit.params[1], rel=1e-6)
    assert row["cuped"]["variance_reduction"] > 0.2  # pre-period clicks predict clicks
    width = row["ci"][1] - row["ci"][0]
    assert row["cuped"]["ci"][1] - row["cuped"]["ci"][0] < 0.9 * width


def test_ratio_metric_is_the_ratio_of_sums(reported) -> None:
    _, truth, files = reported
    row = _row(files.analysis, "ctr")
    arm = truth.arms == "treat"
    ref = truth.clicks[arm].sum() / truth.impressions[arm].sum()
    ref -= truth.clicks[~arm].sum() / truth.impressions[~arm].sum()
    assert row["kind"] == "ratio" and row["effect"] == pytest.approx(ref, rel=1e-9)


def test_holm_is_applied_across_metrics(reported) -> None:
    _, _, files = reported
    rows = [r for r in files.analysis["metrics"] if r["role"] != "guardrail"]
    ref = multipletests([r["p_value"] for r in rows], method="holm")[1]
    assert [r["p_adjusted"] for r in rows] == pytest.approx(list(ref), rel=1e-9)


def test_daily_looks_follow_the_exposure_days(reported) -> None:
    _, truth, files = reported
    days = [d for d in files.analysis["daily"] if d["metric"] == "clicks_per_user"]
    assert len(days) == len(set(truth.day.tolist()))
    assert [d["users"] for d in days] == sorted(d["users"] for d in days)
    assert days[-1]["users"] == len(truth.users)


def test_a_crossed_guardrail_stops_the_experiment_and_says_why(reported) -> None:
    ws, _, files = reported
    result = files.analysis
    hides = next(g for g in result["guardrails"] if g["metric"] == "hides_per_user")
    assert hides["crossed"] and hides["sequential_ci"][0] > 0
    assert result["verdict"]["decision"] == "stopped_guardrail"
    spec = ExperimentStore(ws.root).get(EXP)
    assert spec.status == "stopped" and "hides_per_user" in spec.stopped_reason
    stored = json.loads(files.json_path.read_text())
    assert stored["verdict"] == result["verdict"] and files.html_path.read_text().count("<svg") >= 3


def test_a_planted_srm_blocks_the_verdict(tmp_path) -> None:
    ws, _ = experiment_workspace(tmp_path / "ws", drop_treated=0.4, hide_lift=0.0)
    result = report_experiment(ws, EXP, Settings(), as_of=END).analysis
    assert not result["srm"]["passed"]
    assert result["verdict"]["decision"] == "blocked_srm"


def test_a_real_lift_without_harm_ships(tmp_path) -> None:
    ws, _ = experiment_workspace(tmp_path / "ws", click_lift=1.5, hide_lift=0.0, seed=3)
    result = report_experiment(ws, EXP, Settings(), as_of=END).analysis
    assert result["verdict"]["decision"] == "ship", result["verdict"]
    assert ExperimentStore(ws.root).get(EXP).status == "running"


def test_the_servers_periodic_job_stops_an_experiment_whose_guardrail_crossed(tmp_path) -> None:
    import time

    from moodboard.serve.experiments import GuardrailJob

    ws, _ = experiment_workspace(tmp_path / "ws")
    settings = Settings()
    settings.experiment = settings.experiment.model_copy(update={"guardrail_check_every_s": 0.05})
    job = GuardrailJob(ws, settings).start()
    try:
        deadline = time.monotonic() + 30
        while ExperimentStore(ws.root).get(EXP).status == "running":
            assert time.monotonic() < deadline, "the guardrail job did not stop the experiment"
            time.sleep(0.05)
    finally:
        job.stop()
    spec = ExperimentStore(ws.root).get(EXP)
    assert "guardrail" in spec.stopped_reason and "hides_per_user" in spec.stopped_reason
    assert (ws.root / "experiments" / "reports" / f"{EXP}.json").is_file()


def test_aa_and_plan_read_the_logs(reported) -> None:
    from statsmodels.stats.power import NormalIndPower
    from typer.testing import CliRunner

    from moodboard.cli import app

    ws = reported[0]
    runner = CliRunner()
    res = runner.invoke(app, ["experiment", "aa", "--workspace", str(ws.root), "--runs", "2000",
                              "--seed", "1", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    aa = json.loads(res.stdout)
    assert aa["runs"] == 2000 and aa["srm_planted_flagged"] is True
    for kind in ("mean", "ratio", "cuped"):
        assert 0.036 <= aa["false_positive_rate"][kind] <= 0.064, aa
    assert aa["sequential_error"] <= 0.05
    res = runner.invoke(app, ["experiment", "plan", "--workspace", str(ws.root), "--users", "500",
                              "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    sd = plan["variance"] ** 0.5
    ref = NormalIndPower().solve_power(nobs1=500, alpha=0.05, power=0.8, ratio=1.0) * sd
    assert plan["mde"] == pytest.approx(ref, rel=1e-3)
    res = runner.invoke(app, ["experiment", "plan", "--workspace", str(ws.root), "--metric",
                              "nope"])  # fmt: skip
    assert res.exit_code == 2 and "Unknown metric 'nope'" in res.output


def test_segments_include_the_logged_device_and_are_corrected(reported) -> None:
    _, truth, files = reported
    segs = {s["segment"]: s for s in files.analysis["segments"] if s["metric"] == "clicks_per_user"}
    assert {"device=phone", "device=desktop"} <= set(segs)
    assert segs["device=phone"]["users"] + segs["device=desktop"]["users"] == len(truth.users)
    ps = [s["p_value"] for s in segs.values()]
    ref = multipletests(ps, method="holm")[1]
    assert [s["p_adjusted"] for s in segs.values()] == pytest.approx(list(ref), rel=1e-9)
