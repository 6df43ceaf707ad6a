"""Shopping through the engine: the real surfaces answer the simulated shoppers in-process.

``EnginePages`` is a ``PageSource`` over a loaded ``Engine``: each page a shopper asks for is a
``Request`` to the surface of its session (search, feed, related, board ideas) with the
shopper's id, the page's request id and the simulated time as ``Request.ts``; what comes back
is logged as the server logs it (``serve.pages``: positions, propensity, the candidates'
sources and scores in ``props``), under the same request id, stamped with the simulated time.
The shopper's actions reach the engine's real-time buffer (``RecentActions``) as they happen,
as ``POST /events`` would bring them.

``simulate_through_engine`` runs days of a workspace's shoppers: first ``randomized_days`` of
randomized pages (propensity ``1 / candidates``, for off-policy evaluation), then days through
the engine, with a ``moodboard build`` (and a reload) before the first engine day when
randomized days came before it (or nothing was built yet) and every ``rebuild_every`` days
after, so the engine learns from its own logs. Each block of days is ingested before the next
build. Draws use common random numbers (``simulate.sessions``).

With ``simulate.catalog_growth`` on, products are withheld when the run starts and released
over the days (``simulate.growth``): each block of days is split at the release days, the
day's products are ingested before its pages, a build at a block's start serves them, and the
run's ``growth`` measures how soon the new products were clicked and the catalog's coverage
(``simulate.fresh_metrics``).

The workspace's experiments (``experiment.store``) apply as in the server: each shopper is
served and logged with their arms, on the simulated clock.

Simulated time: day ``d`` is ``simulate.start`` + ``d`` days. A run on a workspace that holds
events starts on the day after the newest one (its ids then start ``sim<seed>d<day>``); the
simulated days must end before now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from moodboard.build import build
from moodboard.config import Settings
from moodboard.data import Request
from moodboard.data import columns as C
from moodboard.errors import InputError, NotFoundError
from moodboard.experiment.assign import NONE, Assigner
from moodboard.experiment.store import ExperimentStore
from moodboard.ingest import IngestReport, Workspace, ingest_events
from moodboard.ingest.workspace import connect_memory
from moodboard.retrieve.sequence import torch_threads
from moodboard.serve.experiments import run_surface_for, surfaces_for
from moodboard.serve.pages import ItemCards, build_page, page_impressions
from moodboard.serve.registry import Engine
from moodboard.simulate.fresh_metrics import GrowthOutcome
from moodboard.simulate.growth import CatalogGrowth
from moodboard.simulate.run import Simulator, setup_world
from moodboard.simulate.sessions import PageAsk, ShownPage
from moodboard.simulate.world import World
from moodboard.surfaces.recent import RecentActions, RecentConfig

_log = logging.getLogger(__name__)

#: Per-user action counts a run reports (the shoppers' engagement with the engine's pages).
METRICS = {"purchases_per_user": "purchase", "clicks_per_user": "click", "saves_per_user": "save"}
#: Per-user metrics of the long run: purchases from the 8th day through the engine on, the
#: days with a session through the engine (with ``simulate.returns`` on, the visits), and the
#: clicks of the first day through the engine (the short term a long-term gain may cost).
LONG_METRICS = ("week2_purchases_per_user", "active_days_per_user", "day1_clicks_per_user")
_EMPTY = ShownPage(np.empty(0, dtype=np.int64), np.empty(0))


class EnginePages:
    """A ``PageSource`` answered by the surfaces of a loaded engine.

    Parameters
    ----------
    engine
        The loaded artifact version (``Engine.load``), with the run's settings.
    world
        The simulated world (item indices of the shoppers' pages).
    assigner
        The workspace's experiments: each shopper is served (and logged with) their arms at
        the page's simulated time, as the server would (None: no experiments).
    """

    def __init__(self, engine: Engine, world: World, assigner: Assigner | None = None) -> None:
        self.engine = engine
        self.world = world
        self.assigner = assigner
        self.cards = ItemCards(engine.catalog)
        self.index = {str(x): i for i, x in enumerate(world.item_ids)}

    def request(self, ask: PageAsk) -> Request:
        """The surface request of a page ask (the simulated time is its ``ts``)."""
        fields: dict[str, Any] = {}
        if ask.surface == "search":
            fields["query"] = ask.query
        elif ask.surface == "related" and ask.item is not None:
            fields["item_id"] = str(self.world.item_ids[ask.item])
        elif ask.surface == "board" and ask.board is not None:
            fields |= {"board_id": ask.board.id, "items": ask.board_items}
        return Request(
            surface=ask.surface,
            user_id=ask.shopper.user_id,
            k=ask.k,
            cursor=ask.cursor,
            ts=ask.ts,
            request_id=ask.request_id,
            **fields,
        )

    def __call__(self, ask: PageAsk) -> ShownPage:
        """The engine's page for ``ask``, with the impression rows the server would log (an
        empty page for an empty query or an item the live catalog lacks)."""
        if ask.surface == "search" and not (ask.query or "").strip():
            return _EMPTY
        started = time.perf_counter()
        assignment = NONE
        if self.assigner is not None:
            assignment = self.assigner(ask.shopper.user_id, ask.ts)
        surfaces, assignment = surfaces_for(self.engine, assignment)
        req = self.request(ask).model_copy(update={"arms": assignment.arms})
        try:
            res = run_surface_for(self.engine, surfaces[ask.surface], assignment, req)
        except NotFoundError:
            return _EMPTY
        page = build_page(
            self.cards,
            res.candidates,
            surface=ask.surface,
            request_id=req.request_id,
            cursor=ask.cursor,
            k=ask.k,
            modules=tuple(res.prepared.context.get("modules", ())) if res.prepared else (),
        )
        kw = {"arms": assignment.arms, "latency_ms": (time.perf_counter() - started) * 1000}
        rows = page_impressions(page, res.candidates, ask.shopper.user_id, ask.query, req.ts, **kw)
        rows = [r for r in rows if r[C.ITEM_ID] in self.index]
        items = np.array([self.index[r[C.ITEM_ID]] for r in rows], dtype=np.int64)
        propensity = np.array([r[C.PROPENSITY] for r in rows], dtype=np.float64)
        return ShownPage(items, propensity, tuple(rows))


@dataclass
class EngineRun:
    """What a run through the engine did.

    Attributes
    ----------
    start
        The first simulated day (UTC midnight).
    days, randomized_days
        Days simulated, of which the first ``randomized_days`` showed randomized pages.
    builds
        The versions built during the run, in order.
    per_user
        For each metric of ``METRICS``, each simulated shopper's count (bots left out) on the
        days through the engine, in account order.
    growth
        With ``simulate.catalog_growth`` on, the new products' and the catalog's outcome.
    """

    users: int
    sessions: int
    start: datetime
    days: int
    randomized_days: int
    report: IngestReport
    builds: list[str] = field(default_factory=list)
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    growth: GrowthOutcome | None = None

    def metrics(self) -> dict[str, float]:
        """Each metric's mean over the shoppers."""
        return {m: float(v.mean()) if len(v) else 0.0 for m, v in self.per_user.items()}

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "users": self.users,
            "sessions": self.sessions,
            "start": self.start.date().isoformat(),
            "days": self.days,
            "randomized_days": self.randomized_days,
            "builds": self.builds,
            "events": self.events,
            **self.metrics(),
            **self.report.as_dict(),
            **({"catalog_growth": self.growth.metrics()} if self.growth else {}),
        }

    def summary(self) -> str:
        """One line."""
        through = self.days - self.randomized_days
        m = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in self.metrics().items())
        return (
            f"simulated {self.users} shoppers from {self.start.date()} for {self.days} days "
            f"({self.randomized_days} randomized, {through} through the engine, "
            f"{len(self.builds)} builds), {self.sessions} sessions; {m}; {self.report.summary()}"
            + (f"; catalog growth: {self.growth.summary()}" if self.growth else "")
        )


def first_day(ws: Workspace, start: str) -> int:
    """The day number (from ``start``) a run on ``ws`` begins: 0 for a workspace without
    events, else the day after its newest event."""
    files = [str(f) for f in ws.events.files()] if ws.exists() else []
    if not files:
        return 0
    with connect_memory() as con:
        newest = con.execute(
            "SELECT max(ts) FROM read_parquet(?, hive_partitioning = false)", [files]
        ).fetchone()[0]
    if newest is None:
        return 0
    return max(0, (newest.date() - datetime.fromisoformat(start).date()).days + 1)


def blocks(first: int, days: int, randomized: int, every: int | None) -> Iterator[range]:
    """The run's blocks of days: the randomized ones, then the engine's, ``every`` at a time."""
    if randomized:
        yield range(first, first + randomized)
    step = every or days
    for lo in range(first + randomized, first + days, step):
        yield range(lo, min(lo + step, first + days))


def simulate_through_engine(
    ws: Workspace,
    settings: Settings,
    *,
    randomized_days: int = 0,
    rebuild_every: int | None = None,
    progress: Callable[[int], None] | None = None,
    say: Callable[[str], None] | None = None,
) -> EngineRun:
    """Simulate ``settings.simulate.days`` days of shoppers through the workspace's engine
    (see the module docstring) and ingest their events.

    Parameters
    ----------
    ws
        The workspace (a catalog; a live artifact is built if there is none).
    settings
        The run's settings: ``simulate`` (shoppers, days, seed), the surfaces served and what
        each build trains.
    randomized_days
        The first days show randomized pages; a build follows them.
    rebuild_every
        Build and reload after every this many days through the engine (None: never).
    progress
        Called with 1 per account and block of days.
    say
        Receives progress messages (builds).

    Raises
    ------
    InputError
        If the workspace has no products, the days would end after now, or
        ``randomized_days`` is not in ``0 .. days``.
    """
    s = settings.simulate
    say = say or (lambda m: _log.info(m))
    if not 0 <= randomized_days <= s.days or (rebuild_every is not None and rebuild_every < 1):
        raise InputError(
            f"randomized_days must be in 0..{s.days} (simulate.days) and rebuild_every >= 1. "
            f"Got {randomized_days} and {rebuild_every} instead."
        )
    first = first_day(ws, s.start)
    start = datetime.fromisoformat(s.start).replace(tzinfo=UTC) + timedelta(days=first)
    if start + timedelta(days=s.days) > datetime.now(UTC):
        raise InputError(
            f"The simulated days would run from {start.date()} to after now: set an earlier "
            f"simulate.start or fewer days (the workspace's events end the day before "
            f"{start.date()})."
        )
    sim = Simulator.on(ws, s)
    origin = datetime.fromisoformat(s.start)
    targets = {t for b in sim.bots.values() for t in b.targets}
    growth = CatalogGrowth.withhold(ws, sim.world, s.catalog_growth, seed=s.seed, first=first,
                                    days=s.days, origin=origin, keep=targets)  # fmt: skip
    setup_world(ws, sim)
    sim.board_items = {b.id: list(b.item_ids) for b in ws.boards()}
    prefix = f"sim{s.seed}" + (f"d{first}" if first else "")
    humans = np.array([n for n in range(s.users) if n not in sim.bots], dtype=np.int64)
    counts = {t: np.zeros(s.users, dtype=np.int64) for t in (*METRICS.values(), "week2", "day1")}
    active: set[tuple[int, int]] = set()
    engine_start: datetime | None = None
    run = EngineRun(s.users - len(sim.bots), 0, start, s.days, randomized_days, _added([]))
    account = {sim.user_id(n): n for n in range(s.users)}
    reports: list[IngestReport] = []
    engine: Engine | None = None
    for block in blocks(first, s.days, randomized_days, rebuild_every):
        through = block.start >= first + randomized_days
        parts = growth.parts(block) if growth else [block]
        recent = None
        if growth:
            growth.release(ws, block.start, sim.world)
        if through:
            rebuild = engine is not None or randomized_days or growth is not None
            if rebuild or ws.current_artifact() is None:
                run.builds.append(_build(ws, settings, say))
            recent = RecentActions(
                RecentConfig(
                    per_user=settings.serve.recent_per_user, users=settings.serve.recent_users
                )
            )
            engine = Engine.load(ws, settings=settings, resources={"recent": recent})
            store = ExperimentStore(ws.root, settings.experiment.declared)
            sim.pages = EnginePages(engine, sim.world, Assigner(store.load(), settings.experiment))
        else:
            sim.pages = sim.browser
        for part in parts:
            if growth and part.start != block.start:
                growth.release(ws, part.start, sim.world)
            tables = sim.day_tables(
                part, prefix, on_actions=recent.add if recent else None, progress=progress
            )
            if through:
                if engine_start is None:
                    engine_start = start + timedelta(days=block.start - first)
                tables = _counting(tables, counts, account, engine_start, active)
            with serving_threads(settings.serve.torch_threads if through else None):
                reports.append(ingest_events(ws, tables, limits=settings.ingest))
    run.report = _added(reports)
    run.sessions = sim.sessions
    run.per_user = {m: counts[t][humans] for m, t in METRICS.items()}
    days_active = np.bincount([n for n, _ in active], minlength=s.users)
    week2, days, day1 = LONG_METRICS
    run.per_user |= {week2: counts["week2"][humans], days: days_active[humans]}
    run.per_user[day1] = counts["day1"][humans]
    run.events = ws.status()["events"]
    if growth:
        since = (engine_start or start).replace(tzinfo=None)
        bots = [sim.user_id(n) for n in sim.bots]
        end = start.replace(tzinfo=None) + timedelta(days=s.days)
        run.growth = GrowthOutcome.of_workspace(ws, growth.released_at(), since, end, bots)
    return run


def serving_threads(n: int | None) -> AbstractContextManager[None]:
    """torch at ``n`` threads (``serve.torch_threads``, as the server runs it) inside, as it
    was after (for the builds); None: unchanged."""
    return nullcontext() if n is None else torch_threads(n)


def _build(ws: Workspace, settings: Settings, say: Callable[[str], None]) -> str:
    manifest = build(ws, say=say, settings=settings)
    return str(manifest["version"])


def _counting(
    tables: Iterator[pa.Table],
    counts: dict[str, np.ndarray],
    account: dict[str, int],
    start: datetime,
    active: set[tuple[int, int]],
) -> Iterator[pa.Table]:
    """``tables`` as they are, counting each account's events of the counted types, its
    purchases from the 8th day after ``start`` on (``counts["week2"]``), its clicks of the
    first day (``counts["day1"]``), and the (account, day) pairs with a page shown
    (``active``)."""
    t0 = start.replace(tzinfo=None)
    for t in tables:
        users = t.column(C.USER_ID).to_pylist()
        days = [(ts - t0).days for ts in t.column(C.TS).to_pylist()]
        for typ, user, day in zip(t.column(C.TYPE).to_pylist(), users, days, strict=True):
            n = account[user]
            if typ in counts:
                counts[typ][n] += 1
            if typ == "purchase" and day >= 7:
                counts["week2"][n] += 1
            elif typ == "click" and day == 0:
                counts["day1"][n] += 1
            elif typ == "impression":
                active.add((n, day))
        yield t


def _added(reports: list[IngestReport]) -> IngestReport:
    """The ingestion reports of a run's blocks, added up."""
    files = [r.quarantine_file for r in reports if r.quarantine_file]
    return IngestReport(
        sum(r.read for r in reports),
        sum(r.stored for r in reports),
        sum(r.quarantined for r in reports),
        files[-1] if files else None,
        sum(r.new for r in reports),
    )
