"""Simulated bot accounts: click floods, save spam and scripted query bursts on a few items.

``SimulateSettings.bot_share`` of the accounts are bots (chosen by the seed; their ids look
like any shopper's). The bots of one kind run one campaign: they push the same
``bot_targets`` items, drawn by the seed. Like shoppers, bots ask for pages (randomized ones,
whatever the shoppers see) and act on them under the page's ``request_id``; the campaign's
items are on every page they act on (the bot kept asking until they were).

- ``click_flood``: once a day, one feed page, then 150 clicks on the targets 0.4-1.2 s apart.
- ``save_spam``: ten feed pages a day at random hours, each target clicked and saved.
- ``query_burst``: once a day, 30 searches on a fixed clock (one interval per bot, 60-180 s),
  the targets' queries in turn, each target clicked 5 s after its page.

Which accounts are bots, their kind and their targets are written to
``simulation/bots.parquet`` (``load_bots``) for evaluation; shoppers' tastes leave bots out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from moodboard.data import columns as C
from moodboard.ingest import Workspace

if TYPE_CHECKING:
    from moodboard.simulate.run import Simulator

BOTS_FILE = "simulation/bots.parquet"
_S = 1_000_000  # microseconds in a second
#: The columns of a simulated account's events, in order.
EVENT_COLUMNS = (
    C.EVENT_ID,
    C.TS,
    C.USER_ID,
    C.TYPE,
    C.ITEM_ID,
    C.QUERY,
    C.SURFACE,
    C.POSITION,
    C.REQUEST_ID,
    C.BOARD_ID,
    C.PROPENSITY,
    C.ARMS,
)


@dataclass(frozen=True)
class BotAccount:
    """One simulated bot: its account, kind and the items (external ids) it pushes."""

    user_id: str
    kind: str
    targets: tuple[str, ...]


def plan_bots(sim: Simulator) -> dict[int, BotAccount]:
    """Which accounts of the simulation are bots (by account number): a function of the
    population seed (``Simulator.population_seed``).

    ``round(bot_share * users)`` accounts, given the kinds in turn; no random draw is made
    when ``bot_share`` is 0, so shoppers' logs do not change.
    """
    s = sim.settings
    k = round(s.bot_share * s.users)
    if k == 0:
        return {}
    rng = np.random.default_rng([sim.population_seed, 5])
    accounts = np.sort(rng.choice(s.users, size=k, replace=False))
    n_targets = min(s.bot_targets, len(sim.world))
    targets = {
        kind: tuple(
            str(sim.world.item_ids[i])
            for i in np.random.default_rng([sim.population_seed, 6, j]).choice(
                len(sim.world), size=n_targets, replace=False
            )
        )
        for j, kind in enumerate(dict.fromkeys(s.bot_kinds))
    }
    return {
        int(n): BotAccount(sim.user_id(int(n)), kind, targets[kind])
        for j, n in enumerate(accounts)
        for kind in (s.bot_kinds[j % len(s.bot_kinds)],)
    }


class _Log:
    """Event columns of one account, with its event and request ids."""

    def __init__(self, prefix: str, n: int, user: str) -> None:
        self.prefix, self.n, self.user = prefix, n, user
        self.cols: dict[str, list[Any]] = {k: [] for k in EVENT_COLUMNS}
        self.requests = 0

    def request(self) -> str:
        self.requests += 1
        return f"{self.prefix}-{self.n}-r{self.requests}-0"

    def __call__(self, ts: int, typ: str, item: str | None = None, **kw: Any) -> None:
        row = {C.TS: ts, C.USER_ID: self.user, C.TYPE: typ, C.ITEM_ID: item, **kw}
        row[C.EVENT_ID] = f"{self.prefix}-{self.n}-{len(self.cols[C.EVENT_ID]) + 1}"
        for k in EVENT_COLUMNS:
            self.cols[k].append(row.get(k))


def bot_events(
    sim: Simulator, n: int, bot: BotAccount, days: range | None = None, prefix: str | None = None
) -> dict[str, list[Any]]:
    """All events of bot account ``n`` over the simulated days, as columns (as
    ``Simulator.user_events``).

    ``days`` (default: all of them) are day numbers from ``simulate.start``; a range that does
    not start at day 0 draws from its own generator. ``prefix`` starts the event and request
    ids (default ``sim<seed>``).
    """
    s = sim.settings
    days = range(s.days) if days is None else days
    rng = np.random.default_rng([s.seed, n, 7, *([days.start] if days.start else [])])
    log = _Log(prefix or f"sim{s.seed}", n, bot.user_id)
    shopper = sim.shopper(n)
    board = sim.boards_of(shopper)[0].id
    index = {str(x): i for i, x in enumerate(sim.world.item_ids)}
    targets = [index[t] for t in bot.targets]
    day0 = int(datetime.fromisoformat(s.start).timestamp() * _S)
    interval = int(rng.integers(60, 181)) * _S

    def page(t: int, filters: dict[str, str], query: str | None = None) -> tuple[int, str, dict]:
        """Show one page holding the targets; returns the time after it, its request, and
        each target's position."""
        request, surface = log.request(), "search" if query else "feed"
        if query:
            log(t, "search", query=query, surface=surface, request_id=request)
        order_rng = np.random.default_rng([s.seed, n, 8, log.requests])
        items = list(sim.browser.order(order_rng, filters, s.page_size, 0).items)
        items = [i for i in items if i not in targets][: max(s.page_size - len(targets), 0)]
        for i in targets:
            items.insert(int(rng.integers(0, len(items) + 1)), i)
        where = {}
        for p, i in enumerate(items, 1):
            t += _S
            iid = str(sim.world.item_ids[i])
            where[iid] = p
            log(t, "impression", iid, query=query, surface=surface, position=p,
                request_id=request, propensity=1.0 / max(len(items), 1))  # fmt: skip
        return t, request, where

    def act(t: int, typ: str, item: str, request: str, where: dict, **kw: Any) -> None:
        log(t, typ, item, surface=kw.pop("surface", "feed"), position=where[item],
            request_id=request, **kw)  # fmt: skip

    def click_flood(day_us: int) -> None:
        t, request, where = page(day_us + int(rng.uniform(0, 23) * 3600 * _S), {})
        for j in range(150):
            t += int(rng.uniform(0.4, 1.2) * _S)
            act(t, "click", bot.targets[j % len(targets)], request, where)

    def save_spam(day_us: int) -> None:
        for h in np.sort(rng.uniform(7, 23, size=10)):
            t, request, where = page(day_us + int(h * 3600 * _S), {})
            for item in bot.targets:
                t += int(rng.integers(3, 16)) * _S
                act(t, "click", item, request, where)
                act(t + _S, "save", item, request, where, board_id=board)

    def query_burst(day_us: int) -> None:
        t0 = day_us + int(rng.integers(1, 20)) * 3600 * _S
        for j in range(30):
            i = targets[j % len(targets)]
            filters = {a: v for a in list(sim.world.codes)[:2] if (v := sim.world.value(a, i))}
            query = " ".join(v.lower() for v in filters.values()) or bot.targets[j % len(targets)]
            t = t0 + j * interval
            _, request, where = page(t, filters, query)
            item = bot.targets[j % len(targets)]
            act(t + 5 * _S, "click", item, request, where, query=query, surface="search")

    kinds: dict[str, Callable[[int], None]] = {
        "click_flood": click_flood, "save_spam": save_spam, "query_burst": query_burst
    }  # fmt: skip
    run = kinds[bot.kind]
    for day in days:
        run(day0 + day * 86_400 * _S)
    return {**log.cols, "_sessions": [log.requests]}


def write_bots(ws: Workspace, bots: dict[int, BotAccount]) -> None:
    """Write the bot accounts (``user_id, kind, item_id``: one row per target) to
    ``DIR/simulation/bots.parquet`` (an empty table when there are none)."""
    rows = [(b.user_id, b.kind, t) for _, b in sorted(bots.items()) for t in b.targets]
    table = pa.table(
        {
            k: pa.array([r[j] for r in rows], pa.string())
            for j, k in enumerate((C.USER_ID, "kind", C.ITEM_ID))
        }
    )
    path = ws.root / BOTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def load_bots(ws: Workspace) -> dict[str, BotAccount]:
    """The simulated bot accounts by user id (empty when the simulation had none).

    Raises
    ------
    FileNotFoundError
        If the workspace was not simulated (``moodboard simulate``) since bots were added.
    """
    path = ws.root / BOTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `moodboard simulate` first.")
    out: dict[str, tuple[str, list[str]]] = {}
    for r in pq.read_table(path).to_pylist():
        out.setdefault(r[C.USER_ID], (r["kind"], []))[1].append(r[C.ITEM_ID])
    return {u: BotAccount(u, k, tuple(t)) for u, (k, t) in out.items()}
