"""Experiments in a running server: who is in which arm, and the chains each arm is served.

``LiveExperiments`` holds the workspace's experiments (``experiment.store``) and looks for
created, changed or stopped ones at most every ``experiment.reload_every_s``, the way
``LiveEngine`` looks for a new ``CURRENT``: no restart. A set that cannot run together (an
experiment file changed by hand into overlap) is logged and the previous set kept.

``variant_surfaces`` is the engine's surfaces with an arm's overrides applied: each surface an
override names is rebuilt from its live chain (``build_surface`` with the same catalog,
sources and resources), once per engine version and set of overrides.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides
from moodboard.data import Candidates, Request
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.experiment.assign import NONE, Assigner, Assignment
from moodboard.experiment.interleave import request_rng, team_draft
from moodboard.experiment.store import ExperimentStore
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.surfaces import Surface, SurfaceResult, build_surface

_log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_PREFIX = "surfaces."
#: The score column of an interleaved page: the team (arm 0 or 1) of each item.
TEAM = "team"


class LiveExperiments:
    """The experiments a server applies, reloaded when their files change.

    Parameters
    ----------
    store
        The workspace's experiments.
    settings
        The server's settings (``experiment``: buckets, holdout, reload period).
    """

    def __init__(self, store: ExperimentStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings.experiment
        self._signature: tuple[Any, ...] | None = None
        self._checked = -float("inf")
        self._assigner = Assigner([], self.settings)
        self._lock = threading.Lock()

    @property
    def assigner(self) -> Assigner:
        """The current set's assigner (reloaded if the files changed since the last look)."""
        now = time.monotonic()
        if now - self._checked >= self.settings.reload_every_s:
            with self._lock:
                if now - self._checked >= self.settings.reload_every_s:
                    self._checked = now
                    self._reload()
        return self._assigner

    def _reload(self) -> None:
        sig = self.store.signature()
        if sig == self._signature:
            return
        try:
            self._assigner = Assigner(self.store.load(), self.settings)
        except ConfigError as exc:
            _log.error("experiments not reloaded, the previous set stays: %s", exc)
        else:
            running = [s.name for s in self._assigner.specs if s.status == "running"]
            _log.info("experiments loaded: %s running (%s)", len(running), ", ".join(running))
        self._signature = sig

    def __call__(self, user: str | None, when: datetime) -> Assignment:
        """The arms of ``user`` for a request at ``when``."""
        return self.assigner(user, when)


def variant_surfaces(engine: Engine, overrides: Mapping[str, Any]) -> dict[str, Surface]:
    """The engine's surfaces with ``overrides`` (``surfaces.<name>.<key>`` pairs) applied.

    Raises
    ------
    ConfigError
        If an override names a surface the engine does not serve, a setting the surface does
        not have, or a component that cannot be built from the live artifact.
    """
    if not overrides:
        return engine.surfaces
    key = json.dumps(dict(overrides), sort_keys=True, default=str)
    cache: dict[str, dict[str, Surface]] = engine.__dict__.setdefault("_variants", {})
    hit = cache.get(key)
    if hit is not None:
        return hit
    with _LOCK:
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _build(engine, overrides)
    return hit


def _build(engine: Engine, overrides: Mapping[str, Any]) -> dict[str, Surface]:
    per_surface: dict[str, dict[str, Any]] = {}
    for k, v in overrides.items():
        name, _, rest = k.removeprefix(_PREFIX).partition(".")
        if not k.startswith(_PREFIX) or not rest:
            raise ConfigError(
                f"The override {k!r} is not a surface setting (surfaces.<name>.<key>)."
            )
        per_surface.setdefault(name, {})[rest] = v
    out = dict(engine.surfaces)
    for name, keys in per_surface.items():
        live = engine.surfaces.get(name)
        if live is None:
            raise ConfigError(
                f"The override names surface {name!r}, which the engine does not serve. "
                f"Surfaces: {', '.join(sorted(engine.surfaces))}."
            )
        config = apply_overrides(live.config, keys)
        env = live.env
        out[name] = build_surface(name, config, env.catalog, env.sources, env.seed, env.resources)
    return out


def interleaved(
    engine: Engine, assignment: Assignment, name: str, req: Request
) -> SurfaceResult | None:
    """The team-draft interleaving of an interleaving experiment's two arms on surface
    ``name`` (None when the shopper is in none, or it does not cover the surface).

    Both arms' chains answer the request; ``team_draft`` merges their orders down to the
    page's end, with coins drawn from (seed, user, experiment, session: else the UTC day), so
    the pages of one session continue one draft. Each item keeps its own arm's retrieval score
    and sources, and a ``team`` score (0: the first arm, 1: the second), logged with the page.

    Raises
    ------
    ConfigError
        If an arm's chain cannot be built from the live artifact.
    """
    spec = assignment.interleave
    if spec is None or name not in spec.affected_surfaces():
        return None
    runs = [
        variant_surfaces(engine, assignment.overrides | arm.overrides)[name].run(req)
        for arm in spec.arms
    ]
    key = req.session or req.ts.date().isoformat()
    rng = request_rng(engine.settings.seed, req.user_id, f"{spec.name}:{key}")
    cands = [r.candidates for r in runs]
    drawn = team_draft(cands[0].items, cands[1].items, max(1, req.cursor + req.k), rng)
    where = [{int(i): j for j, i in enumerate(c.items)} for c in cands]
    rows = [where[t][int(i)] for i, t in zip(drawn.items, drawn.teams, strict=True)]
    pick = [cands[t] for t in drawn.teams]
    merged = Candidates(
        drawn.items,
        {
            C.RETRIEVAL: [c.score(C.RETRIEVAL)[j] for c, j in zip(pick, rows, strict=True)],
            TEAM: drawn.teams,
        },
        [c.sources[j] for c, j in zip(pick, rows, strict=True)],
    )
    timings = {k: runs[0].timings_ms.get(k, 0) + runs[1].timings_ms.get(k, 0)
               for k in runs[0].timings_ms.keys() | runs[1].timings_ms.keys()}  # fmt: skip
    return SurfaceResult(merged, timings, runs[0].stages + runs[1].stages, runs[0].prepared)


def run_surface_for(
    engine: Engine, surface: Surface, assignment: Assignment, req: Request
) -> SurfaceResult:
    """Surface ``surface``'s result for ``req`` under the shopper's experiments: interleaved
    when they are in an interleaving experiment of the surface, else the surface's own."""
    try:
        merged = interleaved(engine, assignment, surface.name, req)
    except ConfigError as exc:
        _log.error("interleaving of %s not served: %s", assignment.arms, exc)
        merged = None
    return merged if merged is not None else surface.run(req)


def surfaces_for(engine: Engine, assignment: Assignment) -> tuple[dict[str, Surface], Assignment]:
    """The surfaces an assignment is served, and the assignment as logged: an arm whose chain
    cannot be built is logged as an error and served (and logged) as no experiment, never as
    its arm."""
    if not assignment.overrides:
        return engine.surfaces, assignment
    try:
        return variant_surfaces(engine, assignment.overrides), assignment
    except ConfigError as exc:
        _log.error("arms %s served without experiments: %s", assignment.arms, exc)
        return engine.surfaces, NONE


class GuardrailJob:
    """The server's periodic guardrail check: every ``experiment.guardrail_check_every_s``
    (0: never) it reports each running experiment (``experiment.run.check_guardrails``), which
    stops one whose guardrail crossed its always-valid bound; the running server then stops
    serving its arms at its next reload.

    Parameters
    ----------
    ws
        The workspace.
    settings
        The server's settings.
    """

    def __init__(self, ws: Workspace, settings: Settings) -> None:
        self.ws = ws
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> GuardrailJob:
        """Start the periodic check (nothing when it is off)."""
        every = self.settings.experiment.guardrail_check_every_s
        if every > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(every,), daemon=True,
                                            name="moodboard-guardrails")  # fmt: skip
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the periodic check (waits for a check in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def _run(self, every: float) -> None:
        # the analysis (Ibis over the event log) loads only when the job runs: a server
        # without it never loads the pipelines' code
        from moodboard.experiment.run import check_guardrails

        while not self._stop.wait(every):
            try:
                stopped = check_guardrails(self.ws, self.settings)
            except Exception as exc:  # the job must outlive a failing check
                _log.error("guardrail check failed: %s", exc)
                continue
            if stopped:
                _log.warning("guardrails stopped experiments: %s", ", ".join(stopped))
