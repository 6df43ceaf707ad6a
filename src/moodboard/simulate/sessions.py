"""One shopper's simulated days: sessions on a surface, pages from a ``PageSource``, actions
under the click model.

Each day the shopper has a Poisson number of sessions (with ``simulate.returns`` on: a visit
or none, as ``simulate.returns`` decides, and sessions on a visit), each at a random hour, on
a surface drawn from ``simulate.surface_mix``: a search (a query built from attribute words,
mostly the shopper's favourites), the home feed, the product page of an item (``related``:
the shopper's last clicked item, else one of a favourite type) or the ideas of one of the
shopper's boards. Each session sees ``pages_per_session`` pages and acts on each under the
click model.

Two ways to draw the randomness:

- sequential (``crn=False``, ``moodboard simulate``): one generator per shopper, consumed in
  order, as the simulator always did (same seed, same logs);
- common random numbers (``crn=True``, through the engine): a day's sessions (their number,
  hours, surfaces, queries) come from a generator of (seed, shopper, day) and the actions on a
  page from one of (seed, shopper, day, session, page), so two runs that show different pages
  (two arms of a comparison) give each shopper the same sessions and the same draw at each
  position; a day's sessions are also sorted by their hour.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from moodboard.data import Board
from moodboard.data import columns as C
from moodboard.simulate.bots import EVENT_COLUMNS
from moodboard.simulate.returns import ReturnState, category_codes, sessions_of_visit
from moodboard.simulate.world import Shopper, World

if TYPE_CHECKING:
    from moodboard.simulate.run import Simulator

#: The surfaces a session may be on, in the order ``simulate.surface_mix`` is drawn.
SURFACES = ("search", "feed", "related", "board")
_S = 1_000_000  # microseconds in a second
_DAY = 86_400 * _S
#: The shopper's actions that a server's real-time buffer would receive.
ACTIONS = ("click", "save", "add_to_cart", "purchase", "hide")
C_IMPRESSION = "impression"


def micros(ts_us: int) -> datetime:
    """A simulated time (microseconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(ts_us / _S, UTC)


@dataclass(frozen=True)
class PageAsk:
    """One page a shopper asks for.

    Attributes
    ----------
    surface
        ``search``, ``feed``, ``related`` or ``board``.
    shopper
        Who asks (``shopper.user_id``).
    filters
        The attribute values the query was built from (``search``; empty otherwise).
    query
        The query text (``search``), else None.
    item
        The item (world index) whose product page it is (``related``), else None.
    board, board_items
        The board (``board``) and the ids of the items saved to it so far.
    request_id
        The page's request id (also the engine's: impressions and actions carry it).
    ts_us
        The simulated time of the request, microseconds since the epoch.
    k, cursor
        Page size and offset.
    rng
        The session's order generator, seeded alike on each page of the session (a
        randomized page's permutation: page 2 continues page 1).
    """

    surface: str
    shopper: Shopper
    filters: dict[str, str]
    query: str | None
    item: int | None
    board: Board | None
    board_items: tuple[str, ...]
    request_id: str
    ts_us: int
    k: int
    cursor: int
    rng: np.random.Generator

    @property
    def ts(self) -> datetime:
        """The request's simulated time."""
        return micros(self.ts_us)


@dataclass(frozen=True)
class ShownPage:
    """Items (indices into the world) in display order and each one's logging propensity;
    ``impressions``, when given, are the page's impression rows as a server logs them
    (``serve.pages.impression_rows``), logged instead of the simulator's own."""

    items: np.ndarray
    propensity: np.ndarray
    impressions: tuple[dict[str, Any], ...] = ()


class PageSource(Protocol):
    """Anything that answers a simulated request with a page."""

    def __call__(self, ask: PageAsk) -> ShownPage: ...


class RandomizedBrowser:
    """Shows the items matching the filters (all items elsewhere) in a random order, each
    logged with propensity ``1 / candidates``.

    The order is a fixed permutation per session, so page 2 continues page 1.
    """

    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, ask: PageAsk) -> ShownPage:
        """A random page of the items matching ``ask.filters``."""
        return self.order(ask.rng, ask.filters, ask.k, ask.cursor)

    def order(
        self, rng: np.random.Generator, filters: dict[str, str], k: int, cursor: int
    ) -> ShownPage:
        """Items ``cursor .. cursor + k`` of a random permutation of the matching items."""
        mask = self.world.in_catalog().copy()
        for a, v in filters.items():
            mask &= self.world.codes[a] == self.world.vocab[a].index(v)
        cand = np.flatnonzero(mask)
        order = rng.permutation(cand)[cursor : cursor + k]
        return ShownPage(order, np.full(len(order), 1.0 / max(len(cand), 1)))


@dataclass(frozen=True)
class _Session:
    ts_us: int
    surface: str
    filters: dict[str, str]
    pick: float  # the draw that picks the related item or the board


#: Receives each page's actions (``event_id, ts, user_id, item_id, type`` rows).
ActionSink = Callable[[list[dict[str, Any]]], None]


class ShopperDays:
    """One shopper's state across simulated days (generators, counters, clicks, boards).

    Parameters
    ----------
    sim
        The simulator (world, settings, click model, shoppers' tastes and boards).
    n
        The shopper's account number.
    crn
        Common random numbers (see the module docstring); False: sequential draws.
    prefix
        Starts every event and request id of this run (``sim<seed>``).
    """

    def __init__(self, sim: Simulator, n: int, *, crn: bool, prefix: str) -> None:
        self.sim, self.n, self.crn, self.prefix = sim, n, crn, prefix
        s = sim.settings
        self.shopper = sim.shopper(n)
        self.boards = sim.boards_of(self.shopper)
        self.saved = {b.id: list(sim.board_items.get(b.id, ())) for b in self.boards}
        self.clicked: list[int] = []
        self.rng = np.random.default_rng([s.seed, n, 1])
        #: The shopper's mean sessions a day (``simulate.activity_shape``: one Gamma draw of
        #: (seed, shopper), the same in every arm of a comparison).
        self.rate = s.sessions_per_day
        if s.activity_shape > 0:
            k = s.activity_shape
            self.rate *= float(np.random.default_rng([s.seed, n, 5]).gamma(k, 1.0 / k))
        self.counter = 0
        self.sessions = 0
        self.start_us = int(datetime.fromisoformat(s.start).timestamp() * 1e6)
        self.cols: dict[str, list[Any]] = {}
        mix = np.array([s.surface_mix.get(x, 0.0) for x in SURFACES], dtype=np.float64)
        self.cum = np.cumsum(mix) / mix.sum()
        self.cum[np.flatnonzero(mix > 0)[-1]] = np.inf  # no rounding past the last surface
        self.cum[mix == 0] = -np.inf  # never drawn
        self.returns = (
            ReturnState(s.returns, category_codes(sim.world.codes)) if s.returns.enabled else None
        )

    def emit(self, ts: int, typ: str, item: str | None = None, **kw: Any) -> dict[str, Any]:
        """Log one event (``kw``: further columns); returns the row."""
        self.counter += 1
        row = {C.EVENT_ID: f"{self.prefix}-{self.n}-{self.counter}", C.TS: ts}
        row |= {C.USER_ID: self.shopper.user_id, C.TYPE: typ, C.ITEM_ID: item, **kw}
        for k in self.cols:
            self.cols[k].append(row.get(k))
        return row

    def _plan(self, rng: np.random.Generator, day: int) -> _Session:
        t = self.start_us + day * _DAY + int(rng.uniform(7, 23) * 3_600 * _S)
        u = rng.random()
        surface = SURFACES[int(np.argmax(u < self.cum))]
        filters = self.sim.query_filters(rng, self.shopper) if surface == "search" else {}
        pick = rng.random() if surface in ("related", "board") else 0.0
        return _Session(t, surface, filters, pick)

    def _sessions(self, rng: np.random.Generator, day: int) -> Iterable[_Session]:
        s = self.sim.settings
        if self.returns is None:
            count = int(rng.poisson(self.rate))
        else:
            count = sessions_of_visit(rng, s.returns)
        if not self.crn:  # drawn as the session goes, interleaved with its actions
            return (self._plan(rng, day) for _ in range(count))
        return sorted((self._plan(rng, day) for _ in range(count)), key=lambda p: p.ts_us)

    def run(
        self, days: Iterable[int], pages: PageSource, on_actions: ActionSink | None = None
    ) -> dict[str, list[Any]]:
        """The shopper's events on ``days`` (day numbers from ``simulate.start``), as columns
        (``props`` too); ``on_actions`` receives each page's actions as they happen."""
        s = self.sim.settings
        self.cols = {k: [] for k in (*EVENT_COLUMNS, C.PROPS)}
        for day in days:
            day_rng = np.random.default_rng([s.seed, self.n, 1, day]) if self.crn else self.rng
            if self.returns is not None:
                u = np.random.default_rng([s.seed, self.n, 4, day]) if self.crn else self.rng
                if not self.returns.visits_today(float(u.random())):
                    self.returns.end_day(visited=False)
                    continue
            for j, plan in enumerate(self._sessions(day_rng, day)):
                self.sessions += 1
                key = [s.seed, self.n, 2, *((day, j) if self.crn else (self.sessions,))]
                self._session(plan, (day, j), key, pages, on_actions)
            if self.returns is not None:
                self.returns.end_day(visited=True)
        return self.cols

    def _target(self, plan: _Session) -> tuple[int | None, Board | None]:
        """The related item or the board a session is about (None, None elsewhere)."""
        if plan.surface == "related":
            if self.clicked:
                recent = self.clicked[-5:]
                return recent[int(plan.pick * len(recent))], None
            types = self.shopper.favourites.get("articleType")
            attr = "articleType" if types else next(iter(self.shopper.favourites))
            world = self.sim.world
            live = np.flatnonzero(world.in_catalog())
            liked = live[world.matches(self.shopper, attr, live)]
            pool = liked if len(liked) else live
            return int(pool[int(plan.pick * len(pool))]), None
        if plan.surface == "board" and self.boards:
            return None, self.boards[int(plan.pick * len(self.boards))]
        return None, None

    def _session(
        self,
        plan: _Session,
        where: tuple[int, int],
        order_key: list[int],
        pages: PageSource,
        on_actions: ActionSink | None,
    ) -> None:
        s, world = self.sim.settings, self.sim.world
        t, surface, searching = plan.ts_us, plan.surface, plan.surface == "search"
        query = " ".join(v.lower() for v in plan.filters.values()) if searching else None
        item, board = self._target(plan)
        for page in range(s.pages_per_session):
            request = f"{self.prefix}-{self.n}-r{self.sessions}-{page}"
            if searching and page == 0:
                self.emit(t, "search", query=query, surface=surface, request_id=request)
            items = tuple(self.saved.get(board.id, ())) if board is not None else ()
            # the same order seed on every page, so page 2 continues page 1
            order_rng = np.random.default_rng(order_key)
            ask = PageAsk(surface, self.shopper, plan.filters, query, item, board, items,
                          request, t, s.page_size, page * s.page_size, order_rng)  # fmt: skip
            shown = pages(ask)
            if len(shown.items) == 0:
                break
            act_rng = np.random.default_rng([s.seed, self.n, 3, *where, page]) if self.crn else None
            positions = np.arange(1, len(shown.items) + 1) + page * s.page_size
            out = self.sim.click_model.sample(
                act_rng or self.rng, positions, world.affinity(self.shopper, shown.items)
            )
            t = self._impressions(t, shown, ask)
            if self.returns is not None:
                self.returns.see(shown.items, out)
            actions: list[dict[str, Any]] = []
            at = {C.QUERY: query, C.SURFACE: surface, C.REQUEST_ID: request}
            for j in np.flatnonzero(out.click | out.hide):
                i = int(shown.items[j])
                iid, pos = str(world.item_ids[i]), int(positions[j])
                t += int((act_rng or self.rng).integers(2, 30)) * _S
                if out.hide[j]:
                    actions.append(self.emit(t, "hide", iid, position=pos, **at))
                    continue
                actions.append(self.emit(t, "click", iid, position=pos, **at))
                self.clicked.append(i)
                if out.save[j] and self.boards:
                    to = self._board_for(i)
                    actions.append(self.emit(t + 1, "save", iid, position=pos, board_id=to, **at))
                    self.saved[to].append(iid)
                if out.cart[j]:
                    actions.append(self.emit(t + 2, "add_to_cart", iid, position=pos, **at))
                if out.purchase[j]:
                    actions.append(self.emit(t + 3, "purchase", iid, position=pos, **at))
            if on_actions is not None and actions:
                on_actions([r | {C.TS: micros(r[C.TS])} for r in actions])
            t += 60 * _S

    def _impressions(self, t: int, shown: ShownPage, ask: PageAsk) -> int:
        """Log the page's impressions (the server's rows when the page has them); returns the
        time after the shopper looked at the page (a second per item)."""
        if shown.impressions:
            for r in shown.impressions:
                props, arms = r.get(C.PROPS), r.get(C.ARMS)
                keep = (C.QUERY, C.SURFACE, C.POSITION, C.REQUEST_ID, C.PROPENSITY)
                self.emit(t, C_IMPRESSION, r[C.ITEM_ID], **{k: r.get(k) for k in keep},
                          props=json.dumps(props) if props is not None else None,
                          arms=json.dumps(arms, sort_keys=True) if arms else None)  # fmt: skip
            return t + len(shown.impressions) * _S
        world = self.sim.world
        for j, i in enumerate(shown.items):
            t += _S
            self.emit(t, C_IMPRESSION, str(world.item_ids[i]), query=ask.query,
                      surface=ask.surface, position=ask.cursor + j + 1,
                      request_id=ask.request_id, propensity=float(shown.propensity[j]))  # fmt: skip
        return t

    def _board_for(self, item: int) -> str:
        """The board a saved item goes to: the one named after its article type, else the
        first."""
        first = self.boards[0].id
        if "articleType" not in self.sim.world.codes:
            return first
        v = self.sim.world.value("articleType", item)
        return next((b.id for b in self.boards if b.title == f"{v} ideas"), first)
