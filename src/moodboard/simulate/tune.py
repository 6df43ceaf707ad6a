"""Tuning a surface's utility weights against the simulator (``moodboard tune weights``).

Each trial sets the weights of the surface's utility (``surfaces.<surface>.compose.utility
.weights``, with the multi-head ranker and ``blend/compose`` on that surface) and runs the same
shoppers through a copy of the workspace (common random numbers: every trial sees the same
shoppers, sessions and draws, as the arms of ``simulate.arms`` do; only the pages differ). A
trial scores on its objectives, each maximized:

- ``clicks_per_user`` and ``purchases_per_user`` of the simulated shoppers (bots left out);
- ``diversity``: over the surface's pages shown through the engine, the mean share of distinct
  categories among a page's items (1: every item of its own category).

A seeded multi-objective TPE sampler (optuna) proposes the weights. The trials that no other
trial beats on every objective form the Pareto frontier; ``write_report`` writes every trial
as a JSON table and the frontier as a PNG plot (clicks against purchases, diversity as colour).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.simulate.arms import copy_workspace
from moodboard.simulate.engine import simulate_through_engine

_log = logging.getLogger(__name__)

OBJECTIVES = ("clicks_per_user", "purchases_per_user", "diversity")


class TuneWeightsConfig(BaseModel):
    """What ``tune_weights`` searches and how long.

    Parameters
    ----------
    trials
        Weight settings tried (each one a simulation through the engine).
    seed
        Seeds the sampler (the shoppers are seeded by ``simulate.seed``).
    ranges
        Per score column, the interval its weight is drawn from (``p_hide`` below 0: hiding
        is a negative objective).
    only_surface
        Every simulated session is on the tuned surface (more of its pages per minute);
        off: the configured ``simulate.surface_mix``.
    keep_workspaces
        Keep each trial's workspace copy (``<out>/trials/trial-NNN``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(default=12, ge=1)
    seed: int = 0
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "p_click": (0.0, 4.0),
            "p_save": (0.0, 8.0),
            "p_add_to_cart": (0.0, 8.0),
            "p_purchase": (0.0, 16.0),
            "p_hide": (-8.0, 0.0),
        }
    )
    only_surface: bool = True
    keep_workspaces: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> TuneWeightsConfig:
        bad = {k: v for k, v in self.ranges.items() if not v[0] < v[1]}
        if not self.ranges or bad:
            raise ValueError(f"Each weight range must be (low, high) with low < high. Got {bad}.")
        return self


@dataclass(frozen=True)
class TrialResult:
    """One trial: its weights, its objectives and whether it is on the Pareto frontier."""

    number: int
    weights: dict[str, float]
    objectives: dict[str, float]
    pareto: bool


def page_diversity(ws: Workspace, surface: str, since: Any) -> float:
    """Mean share of distinct categories among the items of each page of ``surface`` shown
    from ``since`` on (NaN without such a page)."""
    files = [str(f) for f in ws.events.files()]
    if not files:
        return float("nan")
    with ws.connect(read_only=True) as con:
        row = con.execute(
            """
            SELECT avg(distinct_c / n) FROM (
                SELECT e.request_id, count(*) AS n,
                    count(DISTINCT coalesce(p.category, ''))::DOUBLE AS distinct_c
                FROM read_parquet(?, hive_partitioning = false) e
                JOIN products p ON p.id = e.item_id
                WHERE e.type = 'impression' AND e.surface = ? AND e.ts >= ?
                GROUP BY e.request_id
            )
            """,
            [files, surface, since.replace(tzinfo=None)],
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else float("nan")


def _overrides(surface: str, weights: dict[str, float]) -> dict[str, Any]:
    return {
        f"surfaces.{surface}.ranker": "rank/multihead",
        f"surfaces.{surface}.blend": "blend/compose",
        f"surfaces.{surface}.compose.utility.weights": weights,
    }


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (trials x objectives, all maximized) that no other row dominates
    (at least as good everywhere, better somewhere); NaN counts as the worst."""
    v = np.where(np.isnan(values), -np.inf, values)
    ge = (v[:, None, :] >= v[None, :, :]).all(axis=2)
    gt = (v[:, None, :] > v[None, :, :]).any(axis=2)
    dominated = (ge & gt).any(axis=0)
    return ~dominated


def tune_weights(
    ws: Workspace,
    settings: Settings,
    surface: str,
    folder: Path,
    config: TuneWeightsConfig | None = None,
    say: Callable[[str], None] | None = None,
) -> list[TrialResult]:
    """Search the utility weights of ``surface`` (see the module docstring).

    Raises
    ------
    ConfigError
        If the surface is not declared, or the weights cannot be set on it.
    """
    import optuna

    config = config or TuneWeightsConfig()
    if surface not in type(settings.surfaces).model_fields:
        raise ConfigError(
            f"No surface named {surface!r} to tune. Surfaces: "
            f"{', '.join(type(settings.surfaces).model_fields)}."
        )
    base = settings
    if config.only_surface:
        base = apply_overrides(settings, {"simulate.surface_mix": {surface: 1.0}})
    apply_overrides(base, _overrides(surface, {k: 1.0 for k in config.ranges}))  # fails early
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=config.seed)
    study = optuna.create_study(directions=["maximize"] * len(OBJECTIVES), sampler=sampler)
    folder.mkdir(parents=True, exist_ok=True)

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        weights = {h: trial.suggest_float(h, lo, hi) for h, (lo, hi) in config.ranges.items()}
        run_settings = apply_overrides(base, _overrides(surface, weights))
        copy = copy_workspace(ws, folder / f"trial-{trial.number:03d}")
        try:
            run = simulate_through_engine(copy, run_settings)
            got = run.metrics()
            got["diversity"] = page_diversity(copy, surface, run.start)
        finally:
            if not config.keep_workspaces:
                shutil.rmtree(copy.root, ignore_errors=True)
        values = {o: float(got[o]) for o in OBJECTIVES}
        trial.set_user_attr("objectives", values)
        if say:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            say(f"trial {trial.number}: {shown}")
        return tuple(values[o] for o in OBJECTIVES)

    study.optimize(objective, n_trials=config.trials)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    values = np.array([[t.user_attrs["objectives"][o] for o in OBJECTIVES] for t in trials])
    front = pareto_mask(values) if len(trials) else np.zeros(0, dtype=bool)
    return [
        TrialResult(t.number, dict(t.params), dict(t.user_attrs["objectives"]), bool(p))
        for t, p in zip(trials, front, strict=True)
    ]


def write_report(results: list[TrialResult], folder: Path, title: str) -> tuple[Path, Path]:
    """``pareto.json`` (every trial, ``pareto`` marking the frontier) and ``pareto.png``
    (clicks against purchases per shopper, diversity as colour, the frontier outlined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "pareto.json"
    doc = {"objectives": list(OBJECTIVES), "trials": [asdict(r) for r in results]}
    table.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    x = np.array([r.objectives["clicks_per_user"] for r in results])
    y = np.array([r.objectives["purchases_per_user"] for r in results])
    c = np.array([r.objectives["diversity"] for r in results])
    on = np.array([r.pareto for r in results], dtype=bool)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    points = ax.scatter(x, y, c=c, cmap="viridis", s=60, edgecolors="none")
    ax.scatter(x[on], y[on], s=140, facecolors="none", edgecolors="crimson", label="Pareto")
    for r, xi, yi in zip(results, x, y, strict=True):
        ax.annotate(str(r.number), (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=7)
    fig.colorbar(points, ax=ax, label="page diversity (distinct categories / items)")
    ax.set_xlabel("clicks per shopper")
    ax.set_ylabel("purchases per shopper")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    plot = folder / "pareto.png"
    fig.savefig(plot)
    plt.close(fig)
    return table, plot
