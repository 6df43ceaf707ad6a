"""Arms: their syntax, and the paired comparison's statistics against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.errors import ConfigError
from moodboard.simulate.arms import parse_arm
from moodboard.simulate.compare import PairedStats


def test_paired_interval_is_scipys_paired_t_interval() -> None:
    rng = np.random.default_rng(3)
    for n, lam in ((12, 0.3), (500, 1.2), (3000, 0.05)):
        a, b = rng.poisson(lam, n), rng.poisson(lam * 0.8, n)
        p = PairedStats.of(a, b)
        ci = stats.ttest_rel(a, b).confidence_interval(0.95)
        assert p.mean == pytest.approx(np.mean(a - b), abs=1e-12)
        np.testing.assert_allclose(p.interval(), (ci.low, ci.high), rtol=1e-9, atol=1e-12)
        ci90 = stats.ttest_rel(a, b).confidence_interval(0.9)
        np.testing.assert_allclose(p.interval(0.9), (ci90.low, ci90.high), rtol=1e-9)
    same = rng.poisson(1.0, 50)
    assert PairedStats.of(same, same).as_dict() == {"estimate": 0.0, "ci": [0.0, 0.0]}
    with pytest.raises(ConfigError, match="one value per user"):
        PairedStats.of(np.zeros(3), np.zeros(4))
    with pytest.raises(ConfigError, match="at least 2 users"):
        PairedStats.of(np.zeros(1), np.zeros(1)).interval()


def test_an_arm_is_a_name_and_its_overrides() -> None:
    arm = parse_arm("shuffled=surfaces.feed.ranker=rank/shuffle;surfaces.feed.per_source=400")
    assert arm.name == "shuffled"
    assert arm.overrides == {
        "surfaces.feed.ranker": "rank/shuffle",
        "surfaces.feed.per_source": 400,
    }
    assert parse_arm("control=").overrides == {}
    for bad in ("noequals", "=surfaces.feed.ranker=x", "bad name=", "a=surfaces.feed.ranker"):
        with pytest.raises(ConfigError):
            parse_arm(bad)
    with pytest.raises(ConfigError, match="share their shoppers"):
        parse_arm("a=simulate.users=5")


def test_arms_need_the_engine_and_two_distinct_names(tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", "-w", str(tmp_path / "ws"), "--arm", "a=", "--arm", "b="])
    assert res.exit_code == 2 and "--through-engine" in res.stderr
    res = runner.invoke(
        app, ["simulate", "-w", str(tmp_path), "--through-engine", "--arm", "a=", "--arm", "a="]
    )
    assert res.exit_code == 2 and "distinct names" in res.stderr, res.output
