"""Off-policy evaluation of the home feed's module policy on the engine's own logs.

On the mini engine, 60 shoppers shop the feed with modules on for 2 days under the logging
policy (epsilon 0.5); ``moodboard evaluate ope --logs workspace`` estimates a candidate that
puts "new arrivals" first from those logs, and simulates the candidate on-policy from the same
starting workspace (the same shoppers, days and draws) to compare.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from typer.testing import CliRunner

from mini import copy_workspace
from moodboard.blend.modules import order_modules
from moodboard.cli import app
from moodboard.config import load_settings
from moodboard.evaluate.ope import ESTIMATORS, OPEConfig, importance_weights
from moodboard.evaluate.ope_logs import (
    ModulePolicy,
    ModuleRounds,
    candidate_policy,
    evaluate_module_policy,
    module_feedback,
    module_rounds,
    policy_probabilities,
)
from moodboard.ingest import Workspace
from moodboard.pipelines import connect
from moodboard.simulate.engine import simulate_through_engine

#: The logging run: the feed only, with modules, explored half the time.
ENV = {
    "MOODBOARD_SIMULATE__USERS": "60",
    "MOODBOARD_SIMULATE__DAYS": "2",
    "MOODBOARD_SIMULATE__SESSIONS_PER_DAY": "3",
    "MOODBOARD_SIMULATE__SURFACE_MIX": '{"feed": 1.0}',
    "MOODBOARD_SURFACES__FEED__MODULES__ENABLED": "true",
    "MOODBOARD_SURFACES__FEED__MODULES__EPSILON": "0.5",
}
CANDIDATE = "surfaces.feed.modules.weights.new=1.5"


@pytest.fixture(scope="module")
def env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        yield


@pytest.fixture(scope="module")
def logged(
    mini_engine: Workspace, env: None, tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """A copy of the mini engine with 2 days of the logging policy's feed pages."""
    ws = copy_workspace(mini_engine, tmp_path_factory.mktemp("ope") / "logged")
    simulate_through_engine(ws, load_settings())
    return ws


@pytest.fixture(scope="module")
def rounds(logged: Workspace) -> ModuleRounds:
    return module_rounds(connect("duckdb").read_parquet(logged.events.glob()))


def _cli(*args: str) -> object:
    return CliRunner().invoke(app, ["evaluate", "ope", *args])


@pytest.fixture(scope="module")
def report(logged: Workspace, mini_engine: Workspace, env: None) -> dict:
    """The candidate from the logs, and simulated on-policy from the mini engine."""
    res = _cli(
        "--logs", "workspace", "-w", str(logged.root), "--policy", CANDIDATE,
        "--simulate-days", "2", "--simulate-from", str(mini_engine.root),
        "--bootstrap", "2000", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_a_log_without_module_rows_says_how_to_get_them(mini_engine: Workspace) -> None:
    res = _cli("--logs", "workspace", "-w", str(mini_engine.root))
    assert res.exit_code == 2 and "surfaces.feed.modules.enabled=true" in res.output


def test_the_estimate_holds_the_simulated_on_policy_value(report: dict) -> None:
    """The acceptance check: the selected estimator's 95% interval (and dr's, ipw's) holds
    the candidate's simulated click rate per module row, which differs from the logged one."""
    truth = report["on_policy"]
    assert report["rounds"] > 500 and report["on_policy_rounds"] > 500
    assert report["mismatched"] == 0  # every logged propensity is the policy's closed form
    assert set(report["estimators"]) == set(ESTIMATORS)
    assert report["selected"] in OPEConfig().select_among
    for name in {report["selected"], "dr", "ipw"}:
        lo, hi = report["estimators"][name]["ci"]
        assert lo <= truth <= hi, (name, lo, truth, hi)
    for r in report["estimators"].values():
        assert r["relative_error"] == pytest.approx(abs(r["estimate"] - truth) / truth)
    assert abs(truth - report["logged"]) > 0.01  # the candidate is another policy
    assert report["simulation"]["days"] == 2 and report["simulation"]["users"] == 60


def _made_up(contexts: list[list[str]]) -> ModuleRounds:
    """Rounds of every row of the given candidate lists (nothing else of them is read)."""
    among = [(c, j) for c in contexts for j in range(min(3, len(c)))]
    n, width = len(among), max(len(c) for c in contexts)
    z = np.zeros(n)
    return ModuleRounds(
        request_id=np.array([str(i) for i in range(n)], dtype=object),
        user_id=np.array(["u"] * n, dtype=object),
        ts_us=z.astype(np.int64),
        row=np.array([j for _, j in among]),
        among=np.array([c + [""] * (width - len(c)) for c, _ in among], dtype=object),
        shown=np.zeros(n, dtype=np.int64),
        pscore=np.ones(n),
        reward=z,
        activity=np.zeros((n, 2)),
    )


@pytest.mark.parametrize("logs", ["logged", "made-up"])
def test_candidate_probabilities_are_the_policys_draw_frequencies(
    rounds: ModuleRounds, logs: str
) -> None:
    """policy_probabilities (closed form, vectorized) against the frequencies of
    blend.modules.order_modules's own draws, on every distinct context: the logged ones, and
    made-up ones with two boards (a tie) and fewer candidates than rows."""
    if logs == "made-up":
        rounds = _made_up(
            [
                ["board:a", "board:b", "viewed:x", "trending:Tops", "new"],
                ["board:a", "trending:Tops", "new"],
                ["viewed:x", "new"],
            ]
        )
    policy = ModulePolicy({"board": 1.0, "viewed": 0.8, "trending": 0.6, "new": 1.5}, 0.3)
    p = policy_probabilities(rounds, policy)
    assert np.allclose(p.sum(axis=1), 1.0)
    kinds, draws = rounds.kinds, 4000
    seen: set[tuple] = set()
    rng = np.random.default_rng(0)
    for t in range(len(rounds)):
        ctx = tuple(k for k in kinds[t] if k)
        if (ctx, rounds.row[t]) in seen:
            continue
        seen.add((ctx, rounds.row[t]))
        scores = np.array([policy.weights[k] for k in ctx])
        counts = np.zeros(len(ctx))
        for _ in range(draws):
            counts[order_modules(scores, 3, policy.epsilon, rng).order[rounds.row[t]]] += 1
        q = p[t, : len(ctx)]
        assert np.all(np.abs(counts / draws - q) <= 4 * np.sqrt(q * (1 - q) / draws) + 1e-12)
    assert len(seen) >= 3


def test_with_the_logging_policy_ipw_is_the_logged_mean(rounds: ModuleRounds, env: None) -> None:
    settings = load_settings()
    logging = ModulePolicy.of(settings)
    p = policy_probabilities(rounds, logging)[np.arange(len(rounds)), rounds.shown]
    assert np.allclose(p, rounds.pscore, atol=1e-6)  # the logged propensities, 6 digits
    assert np.allclose(importance_weights(module_feedback(rounds, logging)), 1.0, rtol=1e-5)
    report = evaluate_module_policy(rounds, settings, {}, ope=OPEConfig(n_bootstrap=100))
    assert report.logged == pytest.approx(rounds.reward.mean(), abs=0)
    for name in ("ipw", "snipw"):
        assert report.estimators[name]["estimate"] == pytest.approx(report.logged, rel=1e-5)
    assert candidate_policy(settings, {}) == logging


def test_the_table_and_what_to_fix(logged: Workspace, env: None) -> None:
    res = _cli("--logs", "workspace", "-w", str(logged.root), "--policy", CANDIDATE,
               "--bootstrap", "100")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "logged rows of" in res.output and " * " in res.output
    res = _cli("--logs", "workspace", "-w", str(logged.root), "--policy", "surfaces.feed.k=3")
    assert res.exit_code == 2 and "surfaces.feed.modules.epsilon" in res.output
    weights = "surfaces.feed.modules.weights={ board = 1.0 }"
    res = _cli("--logs", "workspace", "-w", str(logged.root), "--policy", weights)
    assert res.exit_code == 2 and "must weigh every logged module kind" in res.output
    res = _cli("--logs", "bandit", "-w", str(logged.root))
    assert res.exit_code == 2 and "--logs workspace" in res.output
