"""A realistic experiment analysis (the dict ``experiment.analysis`` writes to
``<workspace>/experiments/reports/<name>.json``), for the report and dashboard tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moodboard.experiment.spec import ExperimentSpec

METRICS = ("clicks_per_user", "saves_per_user", "ctr", "hides_per_user")


def sample_spec(name: str = "feed-saves", description: str = "") -> ExperimentSpec:
    """A two-arm feed experiment weighting saves more in its treatment arm."""
    return ExperimentSpec.model_validate(
        {
            "name": name,
            "layer": "feed",
            "arms": [
                {"name": "control", "weight": 0.5},
                {
                    "name": "saves",
                    "weight": 0.5,
                    "overrides": {"surfaces.feed.blend.weights": {"p_click": 1.0, "p_save": 6.0}},
                },
            ],
            "control": "control",
            "start": datetime(2026, 1, 1, tzinfo=UTC),
            "stop": datetime(2026, 1, 15, tzinfo=UTC),
            "metrics": ["clicks_per_user", "saves_per_user", "ctr"],
            "guardrails": ["hides_per_user"],
            "description": description or "Weight saves 6x in the feed's blend.",
        }
    )


def _row(
    metric: str,
    kind: str,
    role: str,
    c: float,
    a: float,
    ci: list[float],
    p: float,
    padj: float,
    alpha: float = 0.05,
) -> dict[str, Any]:
    effect = a - c
    half = (ci[1] - ci[0]) / 2
    return {
        "metric": metric,
        "kind": kind,
        "role": role,
        "arm": "saves",
        "control_mean": c,
        "arm_mean": a,
        "effect": effect,
        "lift": effect / c,
        "ci": ci,
        "p_value": p,
        "p_adjusted": padj,
        "significant": padj < alpha,
        "sequential_ci": [effect - 1.6 * half, effect + 1.6 * half],
        "sequential_p": min(1.0, p * 4),
        "cuped": (
            {"effect": effect * 0.95, "ci": [ci[0] * 1.1, ci[1] * 0.9], "variance_reduction": 0.31}
            if kind == "mean"
            else None
        ),
        "bayes": {
            "chance_to_win": 0.98 if effect > 0 else 0.2,
            "expected_loss": 0.001,
            "ci": ci,
        },
    }


def sample_analysis(
    name: str = "feed-saves", description: str = "", decision: str = "ship", srm_passed: bool = True
) -> dict[str, Any]:
    """The analysis of ``sample_spec`` a week in: saves up, clicks flat, hides within bounds."""
    spec = sample_spec(name, description)
    exposures = {"control": 1234, "saves": 1250}
    metrics = [
        _row("saves_per_user", "mean", "primary", 0.21, 0.26, [0.02, 0.08], 0.001, 0.003),
        _row("clicks_per_user", "mean", "secondary", 1.2, 1.23, [-0.04, 0.10], 0.38, 0.76),
        _row("ctr", "ratio", "secondary", 0.041, 0.043, [-0.001, 0.005], 0.19, 0.57),
        _row("hides_per_user", "mean", "guardrail", 0.05, 0.052, [-0.006, 0.010], 0.61, 1.0),
    ]
    daily = []
    for i, day in enumerate(["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]):
        width = 0.2 / (i + 1) ** 0.5
        for metric, effect in (("saves_per_user", 0.05), ("clicks_per_user", 0.03)):
            daily.append(
                {
                    "day": day,
                    "arm": "saves",
                    "metric": metric,
                    "effect": effect + 0.01 * (-1) ** i,
                    "sequential_ci": [effect - width, effect + width],
                    "users": 300 * (i + 1),
                }
            )
    segments = [
        {
            "segment": "new",
            "metric": "clicks_per_user",
            "arm": "saves",
            "effect": 0.21,
            "ci": [0.08, 0.34],
            "p_value": 0.002,
            "p_adjusted": 0.012,
            "users": 820,
        },
        {
            "segment": "returning",
            "metric": "clicks_per_user",
            "arm": "saves",
            "effect": -0.15,
            "ci": [-0.26, -0.04],
            "p_value": 0.006,
            "p_adjusted": 0.018,
            "users": 1664,
        },
        {
            "segment": "category=Shoes",
            "metric": "saves_per_user",
            "arm": "saves",
            "effect": 0.04,
            "ci": [-0.01, 0.09],
            "p_value": 0.11,
            "p_adjusted": 0.33,
            "users": 410,
        },
    ]
    verdicts = {
        "ship": "saves_per_user rose 24% (adjusted p = 0.003) with no guardrail crossed.",
        "blocked_srm": "The arms' exposures do not match the 50/50 split (p < 0.001): "
        "fix the assignment before reading any result.",
    }
    return {
        "experiment": spec.model_dump(mode="json"),
        "as_of": "2026-01-08T00:00:00+00:00",
        "control": "control",
        "alpha": 0.05,
        "exposures": exposures,
        "srm": {
            "p_value": 0.41 if srm_passed else 0.00001,
            "passed": srm_passed,
            "observed": exposures,
            "expected_share": {"control": 0.5, "saves": 0.5},
        },
        "metrics": metrics,
        "daily": daily,
        "segments": segments,
        "guardrails": [
            {
                "metric": "hides_per_user",
                "arm": "saves",
                "crossed": False,
                "sequential_ci": [-0.01, 0.014],
                "direction": "increase_is_bad",
            },
            {
                "metric": "bounce_rate",
                "arm": "saves",
                "crossed": True,
                "sequential_ci": [0.004, 0.03],
                "direction": "increase_is_bad",
            },
        ],
        "verdict": {"decision": decision, "why": verdicts.get(decision, "See the metrics.")},
    }
