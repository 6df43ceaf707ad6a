"""The Bayesian effect against GrowthBook's gbstats 0.8.0 (gbstats_reference.json).

The fixture is written by make_gbstats_fixture.py in a separate venv (see its docstring).
gbstats' EffectBayesianABTest is closed form (scipy norm / truncnorm, no Monte Carlo), so the
numbers agree to rounding: 1e-9 relative (risk goes through scipy's truncnorm there and
through the closed form m Phi(m/s) + s phi(m/s) here).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moodboard.errors import ConfigError, InputError
from moodboard.experiment.bayes import chance_to_win, effect_bayes, expected_loss
from moodboard.experiment.stats import Moments

REFERENCE = json.loads(Path(__file__).with_name("gbstats_reference.json").read_text())
CASES = REFERENCE["cases"]


def test_the_fixture_covers_means_proportions_ratios_and_both_signs() -> None:
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"mean", "proportion", "ratio"} and len(CASES) >= 6
    ctw = [c["gbstats"]["chance_to_win"] for c in CASES]
    assert min(ctw) < 0.2 and max(ctw) > 0.9 and any(0.2 < p < 0.8 for p in ctw)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_effect_bayes_equals_gbstats(case: dict) -> None:
    res = effect_bayes(
        Moments(**case["control"]),
        Moments(**case["treatment"]),
        kind=case["kind"],
        difference=case["difference"],
        alpha=case["alpha"],
        inverse=case["inverse"],
        prior=tuple(case["prior"]) if case["prior"] else None,
    )
    ref = case["gbstats"]
    assert res.difference == ref["risk_type"]
    assert res.expected == pytest.approx(ref["expected"], rel=1e-9, abs=1e-12)
    assert res.stddev == pytest.approx(ref["stddev"], rel=1e-9)
    assert res.chance_to_win == pytest.approx(ref["chance_to_win"], rel=1e-9, abs=1e-12)
    assert list(res.ci) == pytest.approx(ref["ci"], rel=1e-9, abs=1e-12)
    assert list(res.risk) == pytest.approx(ref["risk"], rel=1e-7, abs=1e-12)


def test_risks_are_the_expected_losses() -> None:
    # a symmetric posterior at 0: both risks are s / sqrt(2 pi)
    c, t = expected_loss(0.0, 2.0)
    assert c == pytest.approx(t) == pytest.approx(2.0 / (2 * 3.141592653589793) ** 0.5)
    # E[max(X, 0)] - E[max(-X, 0)] = E[X]
    c, t = expected_loss(0.7, 0.5)
    assert c - t == pytest.approx(0.7)
    assert chance_to_win(0.7, 0.5) + chance_to_win(0.7, 0.5, inverse=True) == pytest.approx(1)


def test_inputs_gbstats_answers_with_a_default_are_errors_here() -> None:
    arm = Moments.of([0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="control mean"):
        effect_bayes(Moments.of([-1.0, 1.0, 0.0]), arm)
    with pytest.raises(InputError, match="zero variance"):
        effect_bayes(Moments.of([1.0, 1.0]), arm, difference="absolute")
    with pytest.raises(ConfigError, match="'kind' parameter of effect_bayes"):
        effect_bayes(arm, arm, kind="median")  # type: ignore[arg-type]
