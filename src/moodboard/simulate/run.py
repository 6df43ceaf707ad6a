"""Simulated shopping sessions over a workspace's catalog, logged through normal ingestion.

Every session either searches (a query built from attribute words, mostly the shopper's
favourites) or browses the feed, sees ranked pages, and acts on them under the click model in
``clickmodel``. Pages come from a ``PageSource``; the default shows the matching items in a
uniformly random order and logs the propensity ``1 / candidates`` of each impression, so the
logs also serve off-policy evaluation. Same seed, same logs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.config import SimulateSettings
from moodboard.data import Board
from moodboard.data import columns as C
from moodboard.ingest import IngestReport, Workspace, ingest_events
from moodboard.simulate.bots import EVENT_COLUMNS, bot_events, plan_bots, write_bots
from moodboard.simulate.clickmodel import PositionBiasedClickModel
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


@dataclass(frozen=True)
class ShownPage:
    """Items (indices into the world) in display order and each one's logging propensity."""

    items: np.ndarray
    propensity: np.ndarray


class PageSource(Protocol):
    """Anything that answers a simulated request with a page."""

    def __call__(
        self,
        rng: np.random.Generator,
        shopper: Shopper,
        filters: dict[str, str],
        k: int,
        cursor: int,
    ) -> ShownPage: ...


class RandomizedBrowser:
    """Shows the items matching the filters (all items on the feed) in a random order.

    The order is a fixed permutation per (request seed), so page 2 continues page 1.
    """

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(
        self,
        rng: np.random.Generator,
        shopper: Shopper,
        filters: dict[str, str],
        k: int,
        cursor: int,
    ) -> ShownPage:
        mask = np.ones(len(self.world), dtype=bool)
        for a, v in filters.items():
            mask &= self.world.codes[a] == self.world.vocab[a].index(v)
        cand = np.flatnonzero(mask)
        order = rng.permutation(cand)[cursor : cursor + k]
        return ShownPage(order, np.full(len(order), 1.0 / max(len(cand), 1)))


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
    """

    def __init__(
        self,
        world: World,
        settings: SimulateSettings | None = None,
        pages: PageSource | None = None,
    ) -> None:
        self.world = world
        self.settings = settings or SimulateSettings()
        self.pages = pages or RandomizedBrowser(world)
        self.click_model = PositionBiasedClickModel(self.settings.click_model)
        #: The bot accounts by account number (``simulate.bots``); none by default.
        self.bots = plan_bots(self)

    def user_id(self, n: int) -> str:
        """The external id of simulated user ``n``."""
        return f"sim-u{n:06d}"

    def shopper(self, n: int) -> Shopper:
        """User ``n``'s tastes: a pure function of (seed, n)."""
        rng = np.random.default_rng([self.settings.seed, n, 0])
        return self.world.sample_shopper(self.user_id(n), rng)

    def boards_of(self, shopper: Shopper) -> list[Board]:
        """One board per favourite of the main attribute (article type where there is one)."""
        attr = (
            "articleType" if "articleType" in shopper.favourites else next(iter(shopper.favourites))
        )
        return [
            Board(id=f"{shopper.user_id}-b{j}", user_id=shopper.user_id, title=f"{v} ideas")
            for j, v in enumerate(shopper.favourites[attr])
        ]

    def _query(self, rng: np.random.Generator, shopper: Shopper) -> dict[str, str]:
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
        mask = np.ones(len(self.world), dtype=bool)
        for a, v in filters.items():
            mask &= self.world.codes[a] == self.world.vocab[a].index(v)
        return bool(mask.any())

    def user_events(self, n: int) -> dict[str, list[Any]]:
        """All events of user ``n`` over the simulated days, as columns."""
        if n in self.bots:
            return bot_events(self, n, self.bots[n])
        s = self.settings
        shopper = self.shopper(n)
        boards = self.boards_of(shopper)
        board_attr = "articleType" if "articleType" in self.world.codes else None
        rng = np.random.default_rng([s.seed, n, 1])
        cols: dict[str, list[Any]] = {k: [] for k in EVENT_COLUMNS}
        counter = 0
        start_us = int(datetime.fromisoformat(s.start).timestamp() * 1e6)

        def emit(
            ts: int,
            typ: str,
            item: str | None = None,
            query: str | None = None,
            surface: str | None = None,
            position: int | None = None,
            request: str | None = None,
            board: str | None = None,
            propensity: float | None = None,
        ) -> None:
            nonlocal counter
            counter += 1
            for key, val in (
                (C.EVENT_ID, f"sim{s.seed}-{n}-{counter}"),
                (C.TS, ts),
                (C.USER_ID, shopper.user_id),
                (C.TYPE, typ),
                (C.ITEM_ID, item),
                (C.QUERY, query),
                (C.SURFACE, surface),
                (C.POSITION, position),
                (C.REQUEST_ID, request),
                (C.BOARD_ID, board),
                (C.PROPENSITY, propensity),
            ):
                cols[key].append(val)

        n_sessions = 0
        for day in range(s.days):
            for _ in range(int(rng.poisson(s.sessions_per_day))):
                n_sessions += 1
                t = start_us + day * 86_400_000_000 + int(rng.uniform(7, 23) * 3_600_000_000)
                searching = rng.random() < 0.7
                filters = self._query(rng, shopper) if searching else {}
                query = " ".join(v.lower() for v in filters.values()) if searching else None
                surface = "search" if searching else "feed"
                for page in range(s.pages_per_session):
                    request = f"sim{s.seed}-{n}-r{n_sessions}-{page}"
                    if searching and page == 0:
                        emit(t, "search", query=query, surface=surface, request=request)
                    # the same order seed on every page, so page 2 continues page 1
                    order_rng = np.random.default_rng([s.seed, n, 2, n_sessions])
                    shown = self.pages(order_rng, shopper, filters, s.page_size, page * s.page_size)
                    if len(shown.items) == 0:
                        break
                    positions = np.arange(1, len(shown.items) + 1) + page * s.page_size
                    out = self.click_model.sample(
                        rng, positions, self.world.affinity(shopper, shown.items)
                    )
                    for j, item in enumerate(shown.items):
                        iid = str(self.world.item_ids[item])
                        t += 1_000_000
                        emit(
                            t,
                            "impression",
                            iid,
                            query,
                            surface,
                            int(positions[j]),
                            request,
                            propensity=float(shown.propensity[j]),
                        )
                    for j in np.flatnonzero(out.click | out.hide):
                        iid = str(self.world.item_ids[shown.items[j]])
                        t += int(rng.integers(2, 30)) * 1_000_000
                        pos = int(positions[j])
                        if out.hide[j]:
                            emit(t, "hide", iid, query, surface, pos, request)
                            continue
                        emit(t, "click", iid, query, surface, pos, request)
                        if out.save[j] and boards:
                            board = boards[0].id
                            if board_attr is not None:
                                v = self.world.value(board_attr, int(shown.items[j]))
                                board = next(
                                    (b.id for b in boards if b.title == f"{v} ideas"), board
                                )
                            emit(t + 1, "save", iid, query, surface, pos, request, board)
                        if out.cart[j]:
                            emit(t + 2, "add_to_cart", iid, query, surface, pos, request)
                        if out.purchase[j]:
                            emit(t + 3, "purchase", iid, query, surface, pos, request)
                    t += 60_000_000
        cols["_sessions"] = [n_sessions]
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
                for k, v in cols.items():
                    acc.setdefault(k, []).extend(v)
                if progress:
                    progress(1)
            if acc:
                yield _to_table(acc)


def _to_table(cols: dict[str, list[Any]]) -> pa.Table:
    arrays = {k: pa.array(v) for k, v in cols.items() if k != C.TS}
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
    world = World.from_products(ws.products_table())
    sim = Simulator(world, settings, pages)
    boards = [b for n in range(settings.users) for b in sim.boards_of(sim.shopper(n))]
    ws.init()
    ws.upsert_boards(boards)
    write_tastes(ws, sim)
    write_bots(ws, sim.bots)
    report = ingest_events(ws, sim.tables(progress))
    events = ws.status()["events"]
    _log.info("simulation: %s", report.summary())
    return SimulationResult(
        settings.users, sim.sessions, len(boards), report, events, len(sim.bots)
    )
