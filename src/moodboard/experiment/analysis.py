"""An experiment's analysis: SRM first, then each metric's effect per arm (Welch or the delta
method, CUPED, the always-valid interval, the Bayesian view), corrected for multiple
comparisons, its cumulative path over days, its segments and guardrails, and a verdict.

Computing is apart from plotting: ``analyze`` returns a plain JSON-able dict (the schema
``experiment.report`` renders and the dashboard reads). Statistics come from the sufficient
statistics of each arm (``experiment.stats.Moments``).

The always-valid (mSPRT) intervals use the mixing variance ``tau2_for(mde)`` with ``mde`` 10%
of the control mean (a metric whose control mean is 0 uses its final standard error).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from moodboard.errors import MoodboardError
from moodboard.experiment.bayes import effect_bayes
from moodboard.experiment.data import ExperimentData, day_date
from moodboard.experiment.metrics import DEFAULT_GUARDRAILS, DEFAULT_METRICS, METRICS, Metric
from moodboard.experiment.sequential import (
    SequentialConfig,
    SequentialTest,
    always_valid_ci,
    msprt_pvalue,
    tau2_for,
)
from moodboard.experiment.spec import ExperimentSettings
from moodboard.experiment.stats import (
    Effect,
    Moments,
    benjamini_hochberg,
    cuped,
    holm,
    ratio,
    srm,
    welch,
)

_log = logging.getLogger(__name__)
#: What a test of too little data raises (no users in an arm, no variance).
_UNTESTABLE = MoodboardError
#: Segments by favourite category: the most common categories, at most this many.
TOP_CATEGORIES = 5
#: The least shoppers per arm a segment needs to be tested.
MIN_SEGMENT_USERS = 20


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _pair(ci: Sequence[float]) -> list[float | None]:
    return [_f(ci[0]), _f(ci[1])]


def effect_of(metric: Metric, y: np.ndarray, x: np.ndarray | None, ctl: np.ndarray,
              arm: np.ndarray, alpha: float) -> Effect:  # fmt: skip
    """The effect of ``arm`` shoppers over ``ctl`` ones (boolean masks) on ``metric``."""
    if metric.denominator is None:
        return welch(Moments.of(y[ctl]), Moments.of(y[arm]), alpha)
    assert x is not None
    return ratio(Moments.of(y[ctl], x[ctl]), Moments.of(y[arm], x[arm]), alpha)


def _tau2(effect: Effect) -> float:
    mde = 0.1 * abs(effect.control_mean) or effect.se
    return tau2_for(mde if mde > 0 else 1e-9)


def _row(metric: Metric, role: str, name: str, data: ExperimentData, ctl: np.ndarray,
         arm: np.ndarray, alpha: float) -> dict[str, Any] | None:  # fmt: skip
    y, x, pre_y, _, _ = data.values(metric)
    try:
        eff = effect_of(metric, y, x, ctl, arm, alpha)
    except _UNTESTABLE as exc:
        _log.info("%s of arm %s not tested: %s", metric.name, name, exc)
        return None
    tau2 = _tau2(eff)
    row: dict[str, Any] = {
        "metric": metric.name,
        "kind": metric.kind,
        "role": role,
        "arm": name,
        "control_mean": _f(eff.control_mean),
        "arm_mean": _f(eff.treatment_mean),
        "effect": _f(eff.estimate),
        "lift": _f(eff.lift),
        "ci": _pair(eff.ci),
        "p_value": _f(eff.p_value),
        "sequential_ci": _pair(always_valid_ci(eff.estimate, eff.se, tau2, alpha)),
        "sequential_p": _f(float(msprt_pvalue(eff.estimate, eff.se, tau2))),
        "users": [int(ctl.sum()), int(arm.sum())],
        "cuped": None,
        "bayes": None,
        "tau2": tau2,
    }
    if metric.denominator is None and np.var(pre_y) > 0:
        try:
            c = cuped(Moments.of(y[ctl], pre_y[ctl]), Moments.of(y[arm], pre_y[arm]), alpha)
            row["cuped"] = {
                "effect": _f(c.estimate),
                "ci": _pair(c.ci),
                "p_value": _f(c.p_value),
                "variance_reduction": _f(c.variance_reduction),
            }
        except _UNTESTABLE as exc:
            _log.info("no CUPED for %s: %s", metric.name, exc)
    try:
        c_m = Moments.of(y[ctl], None if x is None else x[ctl])
        t_m = Moments.of(y[arm], None if x is None else x[arm])
        kind = "mean" if x is None else "ratio"
        b = effect_bayes(c_m, t_m, kind, "relative", alpha, inverse=metric.bad == "increase")
        row["bayes"] = {
            "chance_to_win": _f(b.chance_to_win),
            "expected_loss": _f(b.risk[1]),
            "ci": _pair(b.ci),
        }
    except _UNTESTABLE as exc:
        _log.info("no Bayesian view of %s: %s", metric.name, exc)
    return row


def _daily(data: ExperimentData, metric: Metric, name: str, ctl_arm: str, tau2: float,
           alpha: float) -> tuple[list[dict[str, Any]], SequentialTest]:  # fmt: skip
    test = SequentialTest(SequentialConfig(tau2=tau2, alpha=alpha))
    out = []
    for day in data.days():
        y, x, _, _, mask = data.values(metric, until_day=day)
        arms = data.arms[mask]
        try:
            eff = effect_of(metric, y, x, arms == ctl_arm, arms == name, alpha)
            if not eff.se > 0:
                continue
        except _UNTESTABLE:
            continue
        p, ci = test.update(eff.estimate, eff.se)
        out.append(
            {
                "day": day_date(day),
                "arm": name,
                "metric": metric.name,
                "effect": _f(eff.estimate),
                "ci": _pair(eff.ci),
                "sequential_ci": _pair(ci),
                "sequential_p": _f(p),
                "users": int(mask.sum()),
            }
        )
    return out, test


def _segments(data: ExperimentData, metric: Metric, name: str, ctl_arm: str,
              alpha: float) -> list[dict[str, Any]]:  # fmt: skip
    groups: dict[str, np.ndarray] = {
        "new": ~data.returning,
        "returning": data.returning,
    }
    cats, counts = np.unique(data.category[data.category != ""], return_counts=True)
    for c in cats[np.argsort(-counts)][:TOP_CATEGORIES]:
        groups[f"category={c}"] = data.category == c
    for d in np.unique(data.device[data.device != ""]):
        groups[f"device={d}"] = data.device == d
    y, x, _, _, _ = data.values(metric)
    rows = []
    for seg, member in groups.items():
        ctl, arm = member & (data.arms == ctl_arm), member & (data.arms == name)
        if min(ctl.sum(), arm.sum()) < MIN_SEGMENT_USERS:
            continue
        try:
            eff = effect_of(metric, y, x, ctl, arm, alpha)
        except _UNTESTABLE:
            continue
        rows.append(
            {
                "segment": seg,
                "metric": metric.name,
                "arm": name,
                "effect": _f(eff.estimate),
                "ci": _pair(eff.ci),
                "p_value": _f(eff.p_value),
                "users": int(ctl.sum() + arm.sum()),
            }
        )
    _adjust(rows, alpha)
    return rows


def _adjust(rows: list[dict[str, Any]], alpha: float) -> None:
    """Holm's and Benjamini-Hochberg's adjusted p-values on ``rows`` (in place)."""
    ps = [r["p_value"] for r in rows]
    if not ps:
        return
    ps_arr = np.array([1.0 if p is None else p for p in ps])
    for r, h, bh in zip(rows, holm(ps_arr), benjamini_hochberg(ps_arr), strict=True):
        r["p_adjusted"], r["p_bh"] = float(h), float(bh)
        r["significant"] = bool(h < alpha)


def analyze(data: ExperimentData, settings: ExperimentSettings, as_of: datetime) -> dict[str, Any]:
    """The analysis of an experiment's data (the module docstring says what it holds)."""
    spec, alpha = data.spec, settings.alpha
    control = spec.control_arm
    names = [a.name for a in spec.arms]
    observed = {a: int((data.arms == a).sum()) for a in names}
    out: dict[str, Any] = {
        "experiment": spec.model_dump(mode="json"),
        "as_of": as_of.isoformat(),
        "window": [data.start.isoformat(), data.end.isoformat()],
        "control": control,
        "alpha": alpha,
        "exposures": observed,
        "contaminated": data.contaminated,
        "srm": None,
        "metrics": [],
        "daily": [],
        "segments": [],
        "guardrails": [],
    }
    if sum(observed.values()) == 0:
        out["verdict"] = {"decision": "no_data", "why": "No shopper was exposed yet."}
        return out
    check = srm(observed, {a.name: a.weight for a in spec.arms}, settings.srm_threshold)
    out["srm"] = {
        "p_value": _f(check.p_value),
        "passed": bool(check.passed),
        "observed": observed,
        "expected_share": {a.name: a.weight for a in spec.arms},
        "message": check.message,
    }
    metrics = [METRICS[m] for m in (spec.metrics or DEFAULT_METRICS)]
    guards = [METRICS[m] for m in (spec.guardrails or DEFAULT_GUARDRAILS)]
    ctl = data.arms == control
    for name in names:
        if name == control:
            continue
        arm = data.arms == name
        for j, m in enumerate(metrics):
            row = _row(m, "primary" if j == 0 else "secondary", name, data, ctl, arm, alpha)
            if row is None:
                continue
            out["metrics"].append(row)
            if j == 0:
                out["daily"] += _daily(data, m, name, control, row["tau2"], alpha)[0]
                out["segments"] += _segments(data, m, name, control, alpha)
        for m in guards:
            row = _row(m, "guardrail", name, data, ctl, arm, alpha)
            if row is None:
                continue
            out["metrics"].append(row)
            path, test = _daily(data, m, name, control, row["tau2"], alpha)
            out["daily"] += path
            lo, hi = test.ci
            crossed = bool(lo > 0) if m.bad == "increase" else bool(hi < 0)
            out["guardrails"].append(
                {
                    "metric": m.name,
                    "arm": name,
                    "crossed": crossed,
                    "sequential_ci": _pair(test.ci),
                    "direction": f"{m.bad}_is_bad",
                }
            )
    _adjust([r for r in out["metrics"] if r["role"] != "guardrail"], alpha)
    _adjust([r for r in out["metrics"] if r["role"] == "guardrail"], alpha)
    out["verdict"] = verdict(out)
    return out


def verdict(result: dict[str, Any]) -> dict[str, str]:
    """The decision an analysis supports, and why."""
    srm_ = result["srm"]
    if srm_ is not None and not srm_["passed"]:
        return {
            "decision": "blocked_srm",
            "why": f"Sample ratio mismatch (p = {srm_['p_value']:.2g}): the arms' exposures "
            f"{srm_['observed']} do not match the design {srm_['expected_share']}; find the "
            "cause (logging, assignment, bots) before reading any effect.",
        }
    crossed = [g for g in result["guardrails"] if g["crossed"]]
    if crossed:
        g = crossed[0]
        return {
            "decision": "stopped_guardrail",
            "why": f"Guardrail {g['metric']} crossed its always-valid bound in arm {g['arm']} "
            f"(interval {g['sequential_ci']}, {g['direction'].replace('_', ' ')}).",
        }
    primary = [r for r in result["metrics"] if r["role"] == "primary"]
    wins = [r for r in primary if r.get("significant") and (r["effect"] or 0) > 0]
    losses = [r for r in primary if r.get("significant") and (r["effect"] or 0) < 0]
    if wins:
        best = max(wins, key=lambda r: r["effect"])
        return {
            "decision": "ship",
            "why": f"Arm {best['arm']} raises {best['metric']} by {best['effect']:.4g} "
            f"({(best['lift'] or 0):+.1%}; 95% CI {best['ci'][0]:.4g} to {best['ci'][1]:.4g}, "
            f"Holm-adjusted p = {best['p_adjusted']:.2g}) and no guardrail is crossed.",
        }
    if losses:
        worst = min(losses, key=lambda r: r["effect"])
        return {
            "decision": "no_ship",
            "why": f"Arm {worst['arm']} lowers {worst['metric']} by {-worst['effect']:.4g} "
            f"(Holm-adjusted p = {worst['p_adjusted']:.2g}).",
        }
    return {
        "decision": "inconclusive",
        "why": "No arm moves the primary metric significantly yet (Holm-adjusted, alpha "
        f"{result['alpha']}); keep it running or plan a larger one (`experiment plan`).",
    }
