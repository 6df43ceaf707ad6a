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

Each click is credited two ways (``experiment.interleave``): per page (the page goes to the
team with more of its clicks; a page without clicks, or tied, counts for neither) and per
click. The verdict (``experiment.interleave.preference``) compares, per shopper, the pages (or
clicks) A won with those B won; ``credit="page"`` (the default, the literature's per-query
credit) or ``"click"`` says which one is the run's ``verdict`` and ``users_interleaving``; the
other is reported beside it. Every shopper exposed counts, those without a won page too (their
preference is 0): an experiment cannot pick in advance the shoppers who will click.

The A/B metric is clicks per shopper, the clicks interleaving credits. The same arms then run
as an A/B test (``arms.compare_arms``: each arm in its own copy of the workspace, the same
shoppers, the same days), analysed as an unpaired test, as a real
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
from typing import Any, Literal

import numpy as np
from scipy import stats

from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.experiment.interleave import (
    InterleavingVerdict,
    ab_users_needed,
    credit,
    interleaving_users_needed,
    page_outcome,
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
from moodboard.surfaces.recent import RecentActions, RecentConfig

_log = logging.getLogger(__name__)
#: The per-user metric of the A/B analysis (``engine.METRICS``).
METRIC = "clicks_per_user"
#: How interleaving credits clicks: per page won or per click (``experiment.interleave``).
Credit = Literal["page", "click"]


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
    users, days
        The shoppers (bots left out) and days both methods ran.
    credit
        Which credit ``verdict`` and ``users_interleaving`` use: ``"page"`` or ``"click"``.
    clicks_a, clicks_b
        Per shopper (bots left out, account order), the clicks credited to A and to B.
    pages_a, pages_b
        Per shopper, the interleaved pages A won and B won (more of the page's clicks).
    verdict, users_interleaving
        The interleaving verdict and the users it needs at alpha and power, by ``credit``.
    other_verdict, other_users_interleaving
        The same by the other credit.
    ab_a, ab_b
        Per shopper, the clicks in the A/B test's arm A and arm B.
    ab_diff, ab_ci, ab_p
        The A/B's mean difference A - B, its Welch interval and p-value (unpaired).
    users_ab
        The users the A/B needs at alpha and power (both arms together).
    seconds
        Wall time of the interleaved run and of the A/B run.
    """

    arms: tuple[str, str]
    users: int
    days: int
    credit: Credit
    clicks_a: np.ndarray
    clicks_b: np.ndarray
    pages_a: np.ndarray
    pages_b: np.ndarray
    verdict: InterleavingVerdict
    other_verdict: InterleavingVerdict
    ab_a: np.ndarray
    ab_b: np.ndarray
    ab_diff: float
    ab_ci: tuple[float, float]
    ab_p: float
    users_ab: float
    users_interleaving: float
    other_users_interleaving: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def preferences(self) -> np.ndarray:
        """Each shopper's preference ``(a - b) / (a + b)`` by ``credit``."""
        if self.credit == "page":
            return user_preferences(self.pages_a, self.pages_b)
        return user_preferences(self.clicks_a, self.clicks_b)

    @property
    def ratio(self) -> float:
        """A/B users over interleaving users (by ``credit``)."""
        return self.users_ab / self.users_interleaving

    @property
    def agree(self) -> bool:
        """Both significant, in the same direction (interleaving by ``credit``)."""
        return _agree(self.verdict, self.ab_diff, self.ab_ci)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        a, b = self.arms
        other = "click" if self.credit == "page" else "page"
        return {
            "arms": {"A": a, "B": b},
            "users": self.users,
            "days": self.days,
            "metric": METRIC,
            "credit": self.credit,
            "interleaving": {
                **self.verdict.as_dict(),
                "clicks_a": float(self.clicks_a.sum()),
                "clicks_b": float(self.clicks_b.sum()),
                "pages_a": float(self.pages_a.sum()),
                "pages_b": float(self.pages_b.sum()),
                "users_needed": self.users_interleaving,
            },
            f"interleaving_{other}": {
                **self.other_verdict.as_dict(),
                "users_needed": self.other_users_interleaving,
                "ratio": self.users_ab / self.other_users_interleaving,
                "agree": _agree(self.other_verdict, self.ab_diff, self.ab_ci),
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
            f"({self.credit} credit) winner {v.winner} (wins {v.wins_a}/{v.wins_b}, ties "
            f"{v.ties}, p {v.p_value:.2g}, delta {v.delta:+.3f}); A/B clicks per user "
            f"{self.ab_a.mean():.3f} vs {self.ab_b.mean():.3f} (diff {self.ab_diff:+.3f}, CI "
            f"[{self.ab_ci[0]:+.3f}, {self.ab_ci[1]:+.3f}], p {self.ab_p:.2g}); users needed: "
            f"A/B {self.users_ab:.0f}, interleaving {self.users_interleaving:.0f} (other credit "
            f"{self.other_users_interleaving:.0f}), ratio {self.ratio:.1f}; agree {self.agree}"
        )


def _agree(verdict: InterleavingVerdict, ab_diff: float, ab_ci: tuple[float, float]) -> bool:
    ab_significant = ab_ci[0] > 0 or ab_ci[1] < 0
    same_way = np.sign(ab_diff) == np.sign(verdict.delta) != 0
    return bool(verdict.winner is not None and ab_significant and same_way)


def interleaved_credit(
    ws: Workspace, settings: Settings, arm_a: Arm, arm_b: Arm
) -> tuple[np.ndarray, np.ndarray]:
    """Each shopper's clicks credited to A and to B, and the pages A and B won (arrays of shape
    ``(2, shoppers)``, bots left out, account order), when the workspace's shoppers shop on the
    interleaved pages of the two arms' engines for ``settings.simulate.days`` days from the day
    after the workspace's newest event.

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
    sim = Simulator.on(ws, s)
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
    won = np.zeros((2, s.users), dtype=np.int64)

    def on_actions(rows: list[dict[str, Any]]) -> None:
        for buffer in buffers:
            buffer.add(rows)
        clicked = [r for r in rows if r[C.TYPE] == "click"]
        if clicked:
            n = account[clicked[0][C.USER_ID]]
            items = np.array([index[r[C.ITEM_ID]] for r in clicked], dtype=np.int64)
            on_a, on_b = pages.credit(clicked[0][C.REQUEST_ID], items)
            clicks[:, n] += (on_a, on_b)
            won[:, n] += page_outcome(on_a, on_b)

    first = first_day(ws, s.start)
    with serving_threads(settings.serve.torch_threads):
        for _ in sim.day_tables(range(first, first + s.days), "il", on_actions=on_actions):
            pass  # the events are not ingested: only the credited clicks count
    humans = np.array([n for n in range(s.users) if n not in sim.bots], dtype=np.int64)
    return clicks[:, humans], won[:, humans]


def interleaved_clicks(
    ws: Workspace, settings: Settings, arm_a: Arm, arm_b: Arm
) -> tuple[np.ndarray, np.ndarray]:
    """Each shopper's clicks credited to A and to B (as ``interleaved_credit``)."""
    clicks, _ = interleaved_credit(ws, settings, arm_a, arm_b)
    return clicks[0], clicks[1]


def measure_interleaving(
    ws: Workspace,
    settings: Settings,
    arm_a: Arm,
    arm_b: Arm,
    *,
    folder: Path | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    credit: Credit = "page",
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
    credit
        ``"page"`` (each page to the team with more of its clicks) or ``"click"``: the credit
        of the run's ``verdict`` and ``users_interleaving`` (the other is reported too).

    Raises
    ------
    ConfigError
        If the arms share a name, an override is invalid, ``folder`` exists, ``alpha`` or
        ``power`` is not in (0, 1), or ``credit`` is neither ``"page"`` nor ``"click"``.
    NotFoundError
        If the workspace has no live artifact.
    InputError
        As ``simulate_through_engine`` (e.g. the simulated days would end after now).
    """
    if credit not in ("page", "click"):
        raise ConfigError(
            f"The 'credit' parameter of measure_interleaving must be 'page' or 'click'. Got "
            f"{credit!r} instead."
        )
    check_arms([arm_a, arm_b])
    t0 = time.perf_counter()
    clicks, won = interleaved_credit(ws, settings, arm_a, arm_b)
    by = {"page": won, "click": clicks}
    other: Credit = "click" if credit == "page" else "page"
    verdicts = {c: preference(by[c][0], by[c][1], alpha=alpha) for c in by}
    needed = {
        c: interleaving_users_needed(user_preferences(*by[c]), alpha=alpha, power=power) for c in by
    }
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="moodboard-ab-") as tmp:
        where = folder if folder is not None else Path(tmp) / "arms"
        comparison = compare_arms(ws, settings, [arm_a, arm_b], where)
    t2 = time.perf_counter()
    ab_a = comparison.runs[arm_a.name].per_user[METRIC]
    ab_b = comparison.runs[arm_b.name].per_user[METRIC]
    welch = stats.ttest_ind(ab_a, ab_b, equal_var=False)
    ci = welch.confidence_interval(1 - alpha)
    run = InterleavingRun(
        (arm_a.name, arm_b.name),
        clicks.shape[1],
        settings.simulate.days,
        credit,
        clicks[0],
        clicks[1],
        won[0],
        won[1],
        verdicts[credit],
        verdicts[other],
        ab_a,
        ab_b,
        float(ab_a.mean() - ab_b.mean()),
        (float(ci.low), float(ci.high)),
        float(welch.pvalue),
        ab_users_needed(ab_a, ab_b, alpha=alpha, power=power),
        needed[credit],
        needed[other],
        {"interleaving": t1 - t0, "ab": t2 - t1},
    )
    _log.info("interleaving: %s", run.summary())
    return run
