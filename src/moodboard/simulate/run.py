"""Simulated shopping sessions over a workspace's catalog, logged through normal ingestion.

Every session either searches (a query built from attribute words, mostly the shopper's
favourites) or browses the feed, sees ranked pages, and acts on them under the click model in
``clickmodel``. Pages come from a ``PageSource``; the default shows the matching items in a
uniformly random order and logs the propensity ``1 / candidates`` of each impression, so the
logs also serve off-policy evaluation. Same seed, same logs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.config import SimulateSettings
from moodboard.data import Board
from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.ingest import IngestReport, Workspace, ingest_events
from moodboard.simulate.bots import EVENT_COLUMNS, bot_events, plan_bots, write_bots
from moodboard.simulate.clickmodel import PositionBiasedClickModel
from moodboard.simulate.sessions import ActionSink, PageSource, RandomizedBrowser, ShopperDays
from moodboard.simulate.world import Shopper, World

_log = logging.getLogger(__name__)

_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("baseColour", "articleType"),
    ("gender", "articleType"),
    ("articleType",),
    ("usage", "articleType"),
    ("baseColour", "gender", "articleType"),
)
TASTES_FILE = "simulation/tastes.parquet"
#: The seed the workspace's simulated shoppers were drawn with (``population_seed``).
POPULATION_FILE = "simulation/population.json"


@dataclass
class SimulationResult:
    """What a simulation produced."""

    users: int
    sessions: int
    boards: int
    report: IngestReport
    events: dict[str, int] = field(default_factory=dict)
    bots: int = 0

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {
            "users": self.users,
            "sessions": self.sessions,
            "boards": self.boards,
            "events": self.events,
            "bots": self.bots,
            **self.report.as_dict(),
        }

    def summary(self) -> str:
        """One line."""
        ev = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items()))
        return (
            f"simulated {self.users} shoppers"
            + (f" ({self.bots} of them bots)" if self.bots else "")
            + f", {self.sessions} sessions, {self.boards} boards; "
            f"events: {ev}; {self.report.summary()}"
        )


class Simulator:
    """Seeded shoppers acting on pages.

    Parameters
    ----------
    world
        The catalog's attributes.
    settings
        Users, days, seed, session rates and the click model.
    pages
        Where pages come from; default ``RandomizedBrowser``.
    population_seed
        The seed of the shoppers themselves (their tastes, boards and which accounts are bots;
        default: ``settings.seed``, which then draws only what they do). A workspace records its
        own (``population_seed(ws)``): a run on it with another seed keeps the shoppers whose
        history it holds and varies their sessions and clicks.
    """

    def __init__(
        self,
        world: World,
        settings: SimulateSettings | None = None,
        pages: PageSource | None = None,
        *,
        population_seed: int | None = None,
    ) -> None:
        self.world = world
        self.settings = settings or SimulateSettings()
        self.population_seed = self.settings.seed if population_seed is None else population_seed
        #: Randomized pages: the default page source, and the bots' (whatever the shoppers see).
        self.browser = RandomizedBrowser(world)
        self.pages = pages or self.browser
        #: Items already saved to each board (board id -> item ids) when the run starts.
        self.board_items: dict[str, list[str]] = {}
        self.click_model = PositionBiasedClickModel(self.settings.click_model)
        self._shoppers: dict[int, Shopper] = {}
        #: The bot accounts by account number (``simulate.bots``); none by default.
        self.bots = plan_bots(self)
        #: Each shopper's state across ``day_tables`` calls, by account number.
        self.states: dict[int, ShopperDays] = {}
        self.sessions = 0

    @classmethod
    def on(
        cls, ws: Workspace, settings: SimulateSettings, pages: PageSource | None = None
    ) -> Simulator:
        """A simulator over the workspace's catalog and its own shoppers (the population seed
        it records, ``population_seed``); ``settings.seed`` draws what they do."""
        world = World.from_products(ws.products_table())
        return cls(world, settings, pages, population_seed=population_seed(ws, settings.seed))

    def user_id(self, n: int) -> str:
        """The external id of simulated user ``n``."""
        return f"sim-u{n:06d}"

    def shopper(self, n: int) -> Shopper:
        """User ``n``'s tastes: a pure function of (population seed, n) (drawn once)."""
        found = self._shoppers.get(n)
        if found is None:
            rng = np.random.default_rng([self.population_seed, n, 0])
            found = self._shoppers[n] = self.world.sample_shopper(self.user_id(n), rng)
        return found

    def boards_of(self, shopper: Shopper) -> list[Board]:
        """One board per favourite of the main attribute (article type where there is one)."""
        attr = (
            "articleType" if "articleType" in shopper.favourites else next(iter(shopper.favourites))
        )
        return [
            Board(id=f"{shopper.user_id}-b{j}", user_id=shopper.user_id, title=f"{v} ideas")
            for j, v in enumerate(shopper.favourites[attr])
        ]

    def query_filters(self, rng: np.random.Generator, shopper: Shopper) -> dict[str, str]:
        """The attribute values of a search: a template's attributes, mostly favourites."""
        usable = [t for t in _TEMPLATES if all(a in self.world.codes for a in t)]
        if not usable:
            usable = [tuple(self.world.codes)[-1:]]
        template = usable[int(rng.integers(len(usable)))]
        filters = {}
        for a in template:
            favs = shopper.favourites[a]
            if favs and rng.random() < 0.85:
                filters[a] = favs[int(rng.integers(len(favs)))]
            else:
                filters[a] = self.world.vocab[a][int(rng.integers(len(self.world.vocab[a])))]
        while filters and not self._any_match(filters):
            filters.pop(next(iter(filters)))
        return filters

    def _any_match(self, filters: dict[str, str]) -> bool:
        mask = self.world.in_catalog().copy()
        for a, v in filters.items():
            mask &= self.world.codes[a] == self.world.vocab[a].index(v)
        return bool(mask.any())

    def user_events(self, n: int) -> dict[str, list[Any]]:
        """All events of user ``n`` over the simulated days, as columns (sequential draws)."""
        if n in self.bots:
            return bot_events(self, n, self.bots[n])
        days = ShopperDays(self, n, crn=False, prefix=f"sim{self.settings.seed}")
        cols = days.run(range(self.settings.days), self.pages)
        cols["_sessions"] = [days.sessions]
        return cols

    def tables(
        self, progress: Callable[[int], None] | None = None, users_per_table: int = 500
    ) -> Iterator[pa.Table]:
        """The event log as tables of ``users_per_table`` users each (string-castable)."""
        s = self.settings
        self.sessions = 0
        for lo in range(0, s.users, users_per_table):
            acc: dict[str, list[Any]] = {}
            for n in range(lo, min(lo + users_per_table, s.users)):
                cols = self.user_events(n)
                self.sessions += cols.pop("_sessions")[0]
                _append(acc, cols)
                if progress:
                    progress(1)
            if acc:
                yield _to_table(acc)

    def day_tables(
        self,
        days: range,
        prefix: str,
        *,
        on_actions: ActionSink | None = None,
        progress: Callable[[int], None] | None = None,
        users_per_table: int = 500,
    ) -> Iterator[pa.Table]:
        """The events of every account on ``days`` (day numbers from ``simulate.start``), with
        common random numbers (``sessions``), as tables of ``users_per_table`` users.

        Each shopper's state (clicks, saved items, counters) carries over from the previous
        call, so successive calls simulate consecutive blocks of days; pages come from
        ``self.pages`` (which may change between calls) and each page's actions go to
        ``on_actions`` as they happen. ``prefix`` starts every event and request id.
        """
        s = self.settings
        for lo in range(0, s.users, users_per_table):
            acc: dict[str, list[Any]] = {}
            for n in range(lo, min(lo + users_per_table, s.users)):
                if n in self.bots:
                    cols = bot_events(self, n, self.bots[n], days, f"{prefix}d{days.start}")
                    cols.pop("_sessions")
                else:
                    state = self.states.get(n)
                    if state is None:
                        state = self.states[n] = ShopperDays(self, n, crn=True, prefix=prefix)
                    cols = state.run(days, self.pages, on_actions)
                _append(acc, cols)
                if progress:
                    progress(1)
            if acc:
                yield _to_table(acc)
        self.sessions = sum(st.sessions for st in self.states.values())


def _append(acc: dict[str, list[Any]], cols: dict[str, list[Any]]) -> None:
    """Add one account's columns to ``acc`` (a column it lacks is null)."""
    rows = len(cols[C.EVENT_ID])
    for k in (*EVENT_COLUMNS, C.PROPS):
        acc.setdefault(k, []).extend(cols.get(k) or [None] * rows)


def _to_table(cols: dict[str, list[Any]]) -> pa.Table:
    """Columns as a table (``ts`` in microseconds; a ``props`` column only if some row has
    props)."""
    arrays = {
        k: pa.array(v, type=pa.string() if k == C.PROPS else None)
        for k, v in cols.items()
        if k != C.TS and not (k == C.PROPS and all(x is None for x in v))
    }
    arrays[C.TS] = pa.array(cols[C.TS], type=pa.int64()).cast(pa.timestamp("us"))
    return pa.table(arrays)


def write_tastes(ws: Workspace, sim: Simulator) -> None:
    """Write every simulated shopper's true tastes to ``DIR/simulation/tastes.parquet`` (bots
    have none: ``simulation/bots.parquet`` lists them)."""
    rows: dict[str, list[Any]] = {"user_id": [], "attribute": [], "value": [], "rank": []}
    for n in range(sim.settings.users):
        if n in sim.bots:
            continue
        sh = sim.shopper(n)
        for a, favs in sh.favourites.items():
            for r, v in enumerate(favs):
                for k, x in (("user_id", sh.user_id), ("attribute", a), ("value", v), ("rank", r)):
                    rows[k].append(x)
    path = ws.root / TASTES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)


def load_tastes(ws: Workspace) -> dict[str, dict[str, tuple[str, ...]]]:
    """The true favourite values of each simulated shopper, by attribute, most liked first."""
    t = pq.read_table(ws.root / TASTES_FILE).sort_by(
        [("user_id", "ascending"), ("attribute", "ascending"), ("rank", "ascending")]
    )
    out: dict[str, dict[str, list[str]]] = {}
    for u, a, v in zip(
        *(t.column(c).to_pylist() for c in ("user_id", "attribute", "value")), strict=True
    ):
        out.setdefault(u, {}).setdefault(a, []).append(v)
    return {u: {a: tuple(v) for a, v in d.items()} for u, d in out.items()}


def run_simulation(
    ws: Workspace,
    settings: SimulateSettings | None = None,
    *,
    pages: PageSource | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate shoppers over the workspace catalog and ingest what they did.

    Raises
    ------
    InputError
        If the workspace has no products.
    """
    settings = settings or SimulateSettings()
    sim = Simulator.on(ws, settings, pages)
    boards = setup_world(ws, sim)
    report = ingest_events(ws, sim.tables(progress))
    events = ws.status()["events"]
    _log.info("simulation: %s", report.summary())
    return SimulationResult(settings.users, sim.sessions, boards, report, events, len(sim.bots))


def population_seed(ws: Workspace, seed: int) -> int:
    """The seed the workspace's simulated shoppers were drawn with (``POPULATION_FILE``);
    ``seed`` when none were yet (or the workspace predates the record: its first run from now
    on records its seed)."""
    path = ws.root / POPULATION_FILE
    if not path.exists():
        return seed
    try:
        recorded = json.loads(path.read_text())["seed"]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f'{path} must be {{"seed": <int>}}; it is not ({e}).') from e
    if not isinstance(recorded, int):
        raise InputError(f'{path} must be {{"seed": <int>}}; its seed is {recorded!r}.')
    return recorded


def setup_world(ws: Workspace, sim: Simulator) -> int:
    """Store the shoppers' boards, their true tastes and the bot accounts in the workspace, and
    record the population seed if none is; returns the number of boards."""
    record = ws.root / POPULATION_FILE
    recorded = population_seed(ws, sim.population_seed)
    if recorded != sim.population_seed:
        raise InputError(
            f"{ws.root} holds shoppers drawn with seed {recorded}, not {sim.population_seed}: "
            "make the simulator with Simulator.on(ws, settings)."
        )
    boards = [b for n in range(sim.settings.users) for b in sim.boards_of(sim.shopper(n))]
    ws.init()
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"seed": sim.population_seed}))
    ws.upsert_boards(boards)
    write_tastes(ws, sim)
    write_bots(ws, sim.bots)
    return len(boards)
