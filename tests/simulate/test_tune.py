"""``moodboard tune weights``: the Pareto frontier and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from moodboard.ingest import Workspace
from moodboard.simulate.tune import (
    OBJECTIVES,
    TrialResult,
    TuneWeightsConfig,
    pareto_mask,
    write_report,
)


def _dominated(v: np.ndarray, i: int) -> bool:
    return any((v[j] >= v[i]).all() and (v[j] > v[i]).any() for j in range(len(v)) if j != i)


@pytest.mark.parametrize("seed", range(5))
def test_the_frontier_is_exactly_the_trials_no_other_trial_beats(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 6, size=(40, 3)).astype(float)  # ties included
    front = pareto_mask(v)
    assert front.any()
    assert [not _dominated(v, i) for i in range(len(v))] == front.tolist()


def test_a_nan_objective_counts_as_the_worst() -> None:
    v = np.array([[1.0, 1.0, np.nan], [1.0, 1.0, 0.5], [0.0, 2.0, 0.1]])
    assert pareto_mask(v).tolist() == [False, True, True]


def test_the_report_holds_every_trial_and_marks_the_frontier(tmp_path: Path) -> None:
    results = [
        TrialResult(i, {"p_click": float(i)}, dict(zip(OBJECTIVES, o, strict=True)), p)
        for i, (o, p) in enumerate(
            [((0.5, 0.01, 0.4), True), ((0.4, 0.02, 0.5), True), ((0.3, 0.01, 0.3), False)]
        )
    ]
    table, plot = write_report(results, tmp_path, "feed")
    doc = json.loads(table.read_text())
    assert doc["objectives"] == list(OBJECTIVES)
    assert [t["pareto"] for t in doc["trials"]] == [True, True, False]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_weight_ranges_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="low < high"):
        TuneWeightsConfig(ranges={"p_click": (2.0, 1.0)})


def test_tune_weights_runs_trials_through_the_engine_and_writes_the_frontier(
    mini_engine: Workspace, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from moodboard.cli import app

    out = tmp_path / "tune"
    args = ["tune", "weights", "-w", str(mini_engine.root), "--surface", "feed", "--trials", "2"]
    args += ["--users", "20", "--days", "1", "--seed", "3", "--out", str(out), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    trials = doc["trials"]
    assert len(trials) == 2 and any(t["pareto"] for t in trials)
    for t in trials:
        assert set(t["objectives"]) == set(OBJECTIVES)
        assert t["objectives"]["clicks_per_user"] > 0 and 0 < t["objectives"]["diversity"] <= 1
        assert set(t["weights"]) == set(TuneWeightsConfig().ranges)
    assert (out / "pareto.png").stat().st_size > 10_000
    assert not list(mini_engine.root.parent.glob("moodboard-tune-*"))  # trial copies removed
