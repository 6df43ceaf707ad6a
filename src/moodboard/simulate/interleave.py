"""Interleaving against A/B through the engine: how many shoppers each needs to tell two arms
apart.

``measure_interleaving`` runs the workspace's simulated shoppers (``settings.simulate``:
users, days, seed, surface mix; set ``simulate.surface_mix`` to the surface under test, e.g.
``{feed = 1.0}``) through two engines loaded on the same live artifact, one per arm's
settings overrides (``arms.Arm``). Each page a shopper asks for is answered by both engines'
surface chains and shown team-draft interleaved (``experiment.interleave.team_draft``; the
coins come from the session's order generator, so the pages of a session continue one
draft); the shopper acts on it under the click model as on any page (``sessions``), and each
click is credited to the team of the item (``experiment.interleave.credit``). The shoppers'
actions reach both engines' real-time buffers. Nothing is ingested: the workspace is only
read.

The metric is clicks per shopper, the one interleaving credits: the verdict
(``experiment.interleave.preference``) compares each shopper's clicks on A's items with those
on B's. The same arms then run as an A/B test (``arms.compare_arms``: each arm in its own copy
of the workspace, the same shoppers, the same days), analysed as an unpaired test, as a real
A/B test with a 50/50 split would be: the difference of the arms' mean clicks per shopper, its
Welch 95% interval, and the users it would need (``experiment.interleave.ab_users_needed``,
both arms together) against those interleaving needs
(``experiment.interleave.interleaving_users_needed``) to detect the observed effect at alpha
0.05 and power 0.8. The verdicts agree when they point the same way and both are significant
(the interleaving sign test at alpha, the A/B interval excluding 0 at its full size, every
shopper in each arm).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides
from moodboard.data import columns as C
from moodboard.experiment.interleave import (
    InterleavingVerdict,
    ab_users_needed,
    credit,
    interleaving_users_needed,
    preference,
    team_draft,
    user_preferences,
)
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.simulate.arms import Arm, check_arms, compare_arms
from moodboard.simulate.engine import EnginePages, first_day, serving_threads
from moodboard.simulate.run import Simulator
from moodboard.simulate.sessions import PageAsk, ShownPage
from moodboard.simulate.world import World
from moodboard.surfaces.recent import RecentActions, RecentConfig

_log = logging.getLogger(__name__)
#: The per-user metric both analyses use (``engine.METRICS``).
METRIC = "clicks_per_user"


class InterleavedPages:
    """A ``PageSource`` showing the team-draft interleaving of two page sources' pages.

    A page at offset ``cursor`` is items ``cursor .. cursor + k`` of the draft of each
    source's first ``cursor + k`` items (each source asked from offset 0). Each shown page's
    items and teams are kept by request id until ``credit`` takes them.

    Parameters
    ----------
    a, b
        The two arms' page sources (team 0 and team 1).
    """

    def __init__(
        self, a: Callable[[PageAsk], ShownPage], b: Callable[[PageAsk], ShownPage]
    ) -> None:
        self.a, self.b = a, b
        #: request id -> (shown items, their teams), until credited.
        self.pages: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, ask: PageAsk) -> ShownPage:
        """The interleaved page of ``ask`` (no server impression rows: nothing is logged)."""
        top = replace(ask, k=ask.cursor + ask.k, cursor=0)
        page = team_draft(self.a(top).items, self.b(top).items, top.k, ask.rng)
        items, teams = page.items[ask.cursor :], page.teams[ask.cursor :]
        self.pages[ask.request_id] = (items, teams)
        return ShownPage(items, np.full(len(items), np.nan))

    def credit(self, request_id: str, clicked_items: np.ndarray) -> tuple[int, int]:
        """The clicks on the page of ``request_id`` credited to A and B (the page is then
        forgotten; ``(0, 0)`` for a page not shown)."""
        items, teams = self.pages.pop(request_id, (np.empty(0, np.int64), np.empty(0, np.int8)))
        return credit(teams, np.isin(items, clicked_items))


@dataclass
class InterleavingRun:
    """Interleaving and A/B on the same shoppers and days (see the module docstring).

    Attributes
    ----------
    arms
        The names of A and B.
    clicks_a, clicks_b
        Per shopper (bots left out, account order), the clicks credited to A and to B.
    verdict
        The interleaving verdict.
    ab_a, ab_b
        Per shopper, the clicks in the A/B test's arm A and arm B.
    ab_diff, ab_ci, ab_p
        The A/B's mean difference A - B, its Welch 95% interval and p-value (unpaired).
    users_ab, users_interleaving
        The users each needs at alpha 0.05 and power 0.8 (A/B: both arms together).
    seconds
        Wall time of the interleaved run and of the A/B run.
    """

    arms: tuple[str, str]
    users: int
    days: int
    clicks_a: np.ndarray
    clicks_b: np.ndarray
    verdict: InterleavingVerdict
    ab_a: np.ndarray
    ab_b: np.ndarray
    ab_diff: float
    ab_ci: tuple[float, float]
    ab_p: float
    users_ab: float
    users_interleaving: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def preferences(self) -> np.ndarray:
        """Each shopper's preference ``(a - b) / (a + b)``."""
        return user_preferences(self.clicks_a, self.clicks_b)

    @property
    def ratio(self) -> float:
        """A/B users over interleaving users."""
        return self.users_ab / self.users_interleaving

    @property
    def agree(self) -> bool:
        """Both significant, in the same direction."""
        ab_significant = self.ab_ci[0] > 0 or self.ab_ci[1] < 0
        same_way = np.sign(self.ab_diff) == np.sign(self.verdict.delta) != 0
        return bool(self.verdict.winner is not None and ab_significant and same_way)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        a, b = self.arms
        return {
            "arms": {"A": a, "B": b},
            "users": self.users,
            "days": self.days,
            "metric": METRIC,
            "interleaving": {
                **self.verdict.as_dict(),
                "clicks_a": float(self.clicks_a.sum()),
                "clicks_b": float(self.clicks_b.sum()),
                "users_needed": self.users_interleaving,
            },
            "ab": {
                "mean_a": float(self.ab_a.mean()),
                "mean_b": float(self.ab_b.mean()),
                "diff": self.ab_diff,
                "ci": list(self.ab_ci),
                "p_value": self.ab_p,
                "users_needed": self.users_ab,
            },
            "ratio": self.ratio,
            "agree": self.agree,
            "seconds": self.seconds,
        }

    def summary(self) -> str:
        """One line."""
        v, (a, b) = self.verdict, self.arms
        return (
            f"{self.users} shoppers, {self.days} days, {a} (A) vs {b} (B): interleaving "
            f"winner {v.winner} (wins {v.wins_a}/{v.wins_b}, ties {v.ties}, p {v.p_value:.2g}, "
            f"delta {v.delta:+.3f}); A/B clicks per user {self.ab_a.mean():.3f} vs "
            f"{self.ab_b.mean():.3f} (diff {self.ab_diff:+.3f}, 95% CI [{self.ab_ci[0]:+.3f}, "
            f"{self.ab_ci[1]:+.3f}]); users needed: A/B {self.users_ab:.0f}, interleaving "
            f"{self.users_interleaving:.0f}, ratio {self.ratio:.1f}; agree {self.agree}"
        )


def interleaved_clicks(
    ws: Workspace, settings: Settings, arm_a: Arm, arm_b: Arm
) -> tuple[np.ndarray, np.ndarray]:
    """Each shopper's clicks credited to A and to B (bots left out, account order) when the
    workspace's shoppers shop on the interleaved pages of the two arms' engines for
    ``settings.simulate.days`` days from the day after the workspace's newest event.

    Raises
    ------
    ConfigError
        If an arm's overrides are invalid.
    NotFoundError
        If the workspace has no live artifact.
    """
    s = settings.simulate
    serve = settings.serve
    recent = RecentConfig(per_user=serve.recent_per_user, users=serve.recent_users)
    sim = Simulator(World.from_products(ws.products_table()), s)
    buffers, sources = [], []
    for arm in (arm_a, arm_b):
        buffers.append(RecentActions(recent))
        engine = Engine.load(
            ws, settings=apply_overrides(settings, arm.overrides), resources={"recent": buffers[-1]}
        )
        sources.append(EnginePages(engine, sim.world))
    pages = InterleavedPages(*sources)
    sim.pages = pages
    sim.board_items = {b.id: list(b.item_ids) for b in ws.boards()}
    account = {sim.user_id(n): n for n in range(s.users)}
    index = sources[0].index
    clicks = np.zeros((2, s.users), dtype=np.int64)

    def on_actions(rows: list[dict[str, Any]]) -> None:
        for buffer in buffers:
            buffer.add(rows)
        clicked = [r for r in rows if r[C.TYPE] == "click"]
        if clicked:
            n = account[clicked[0][C.USER_ID]]
            items = np.array([index[r[C.ITEM_ID]] for r in clicked], dtype=np.int64)
            wins = pages.credit(clicked[0][C.REQUEST_ID], items)
            clicks[:, n] += wins

    first = first_day(ws, s.start)
    with serving_threads(settings.serve.torch_threads):
        for _ in sim.day_tables(range(first, first + s.days), "il", on_actions=on_actions):
            pass  # the events are not ingested: only the credited clicks count
    humans = np.array([n for n in range(s.users) if n not in sim.bots], dtype=np.int64)
    return clicks[0, humans], clicks[1, humans]


def measure_interleaving(
    ws: Workspace,
    settings: Settings,
    arm_a: Arm,
    arm_b: Arm,
    *,
    folder: Path | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> InterleavingRun:
    """Interleave ``arm_a`` and ``arm_b`` and run them as an A/B test on the same shoppers and
    days; compare the users each needs (see the module docstring).

    Parameters
    ----------
    ws
        A workspace with a live artifact (only read: the A/B arms run in copies).
    settings
        The shoppers (``simulate``) and the engine's settings the arms override.
    arm_a, arm_b
        The two arms (``arms.parse_arm``).
    folder
        Where the A/B test's copies of the workspace go (must not exist); default a
        temporary folder, removed after.
    alpha, power
        The level and power of the sample sizes and the interleaving verdict.

    Raises
    ------
    ConfigError
        If the arms share a name, an override is invalid, ``folder`` exists, or ``alpha`` or
        ``power`` is not in (0, 1).
    NotFoundError
        If the workspace has no live artifact.
    InputError
        As ``simulate_through_engine`` (e.g. the simulated days would end after now).
    """
    check_arms([arm_a, arm_b])
    t0 = time.perf_counter()
    clicks_a, clicks_b = interleaved_clicks(ws, settings, arm_a, arm_b)
    verdict = preference(clicks_a, clicks_b, alpha=alpha)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="moodboard-ab-") as tmp:
        where = folder if folder is not None else Path(tmp) / "arms"
        comparison = compare_arms(ws, settings, [arm_a, arm_b], where)
    t2 = time.perf_counter()
    ab_a = comparison.runs[arm_a.name].per_user[METRIC]
    ab_b = comparison.runs[arm_b.name].per_user[METRIC]
    welch = stats.ttest_ind(ab_a, ab_b, equal_var=False)
    ci = welch.confidence_interval(1 - alpha)
    prefs = user_preferences(clicks_a, clicks_b)
    run = InterleavingRun(
        (arm_a.name, arm_b.name),
        len(clicks_a),
        settings.simulate.days,
        clicks_a,
        clicks_b,
        verdict,
        ab_a,
        ab_b,
        float(ab_a.mean() - ab_b.mean()),
        (float(ci.low), float(ci.high)),
        float(welch.pvalue),
        ab_users_needed(ab_a, ab_b, alpha=alpha, power=power),
        interleaving_users_needed(prefs, alpha=alpha, power=power),
        {"interleaving": t1 - t0, "ab": t2 - t1},
    )
    _log.info("interleaving: %s", run.summary())
    return run
