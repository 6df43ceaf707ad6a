"""Point-in-time features of an impression, defined once: compiled to Ibis for training and
evaluated over in-memory events at serving time (``OnlineSignals``).

Every feature of an impression (user ``u``, candidate item ``i``, time ``t``) reads only the
actions logged strictly before ``t`` (an action at ``t`` itself or later is never seen):

- ``Count(name, by, types)``: how many actions of ``types`` the impression's user
  (``by="user"``) or candidate item (``by="item"``, all users: its popularity then) has;
- ``History(n, types)``: the user's last ``n`` actions of ``types``, newest first by
  (ts, event_id): their item ids, types, and ages in seconds at ``t``.

``Signals`` holds the definitions; ``Signals.default(n)`` is the multi-head ranker's set
(the user's count of each action type, the item's count of positive actions, the last ``n``
actions). The actions are the first copies of the click, save, add_to_cart, purchase and hide
events (``pipelines.labels.head_actions`` for training), bots already removed by the caller.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import columns as C
from moodboard.rank.inputs import HEADS

_log = logging.getLogger(__name__)

#: The time column (microseconds since the epoch) of the rows and the actions.
TS_US: Final = "ts_us"
#: The history's list columns: item ids, action types, ages in seconds (newest first).
HISTORY_ITEMS: Final = "history_item_ids"
HISTORY_TYPES: Final = "history_types"
HISTORY_AGES: Final = "history_age_s"
#: The actions that count as positive engagement (an item's popularity).
POSITIVE: Final = tuple(h for h in HEADS if h != "hide")
_BY = {"user": C.USER_ID, "item": C.ITEM_ID}


class SignalsConfig(BaseModel):
    """``[rank.signals]``: the point-in-time features of the multi-head ranker's rows.

    Parameters
    ----------
    history_length
        The user's last ``history_length`` actions before the impression are its sequence.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    history_length: int = Field(default=20, ge=1, le=1_000)


@dataclass(frozen=True)
class Count:
    """How many actions of ``types`` the impression's ``by`` had strictly before its time.

    Parameters
    ----------
    name
        The feature's column name.
    by
        ``"user"`` (the impression's user) or ``"item"`` (the candidate, over all users).
    types
        The action types counted.
    """

    name: str
    by: Literal["user", "item"]
    types: tuple[str, ...]


@dataclass(frozen=True)
class History:
    """The user's last ``n`` actions of ``types`` strictly before the impression, newest first.

    Parameters
    ----------
    n
        How many actions at most.
    types
        The action types kept.
    """

    n: int
    types: tuple[str, ...] = HEADS


@dataclass(frozen=True)
class Signals:
    """The point-in-time features of an impression: counts and the user's history.

    Parameters
    ----------
    counts
        The count features, in column order.
    history
        The user's action sequence.

    Raises
    ------
    ValueError
        If two counts share a name, a count's ``by`` is unknown, or a type is not an action.
    """

    counts: tuple[Count, ...]
    history: History

    def __post_init__(self) -> None:
        names = [c.name for c in self.counts]
        if len(set(names)) != len(names):
            raise ValueError(f"The counts of Signals must have distinct names. Got {names}.")
        for c in (*self.counts, self.history):
            bad = sorted(set(c.types) - set(HEADS))
            if bad or not c.types:
                raise ValueError(
                    f"The 'types' of {c} must be some of {list(HEADS)}. Got {bad or '()'}."
                )
        for c in self.counts:
            if c.by not in _BY:
                raise ValueError(
                    f"The 'by' of count {c.name!r} must be 'user' or 'item'. Got {c.by!r}."
                )

    @classmethod
    def default(cls, config: SignalsConfig | None = None) -> Signals:
        """The multi-head ranker's features: ``user_n_<type>`` for each action type,
        ``item_n_positive`` (clicks, saves, carts and purchases of the candidate by anyone) and
        the user's last ``history_length`` actions."""
        cfg = config or SignalsConfig()
        users = tuple(Count(f"user_n_{t}", "user", (t,)) for t in HEADS)
        return cls(
            (*users, Count("item_n_positive", "item", POSITIVE)), History(cfg.history_length)
        )

    @property
    def count_names(self) -> tuple[str, ...]:
        """The count columns, in order."""
        return tuple(c.name for c in self.counts)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every feature column: the counts, then the history's three lists."""
        return (*self.count_names, HISTORY_ITEMS, HISTORY_TYPES, HISTORY_AGES)


def signals_ibis(
    rows: ir.Table,
    actions: ir.Table,
    signals: Signals,
    key: tuple[str, ...] = (C.REQUEST_ID, C.ITEM_ID),
) -> ir.Table:
    """The features of ``signals`` for every row, as one Ibis expression (DuckDB or Spark).

    Parameters
    ----------
    rows
        The impressions: ``key`` columns (unique), ``user_id``, ``item_id`` and ``ts_us``.
    actions
        The actions: ``event_id``, ``user_id``, ``item_id``, ``type`` and ``ts_us``.
    signals
        The definitions.
    key
        The rows' unique key.

    Returns
    -------
    ir.Table
        ``rows`` with one int64 column per count and the history's lists (``history_item_ids``,
        ``history_types``, ``history_age_s``: newest first; null when the user had no action).
    """
    on = rows.select(*dict.fromkeys((*key, C.USER_ID, C.ITEM_ID, TS_US)))
    out = rows.left_join(_counts(on, actions, signals.counts, key), list(key))
    out = out.drop(*(f"{k}_right" for k in key if f"{k}_right" in out.columns))
    out = out.left_join(_history(on, actions, signals.history, key), list(key))
    out = out.drop(*(f"{k}_right" for k in key if f"{k}_right" in out.columns))
    return out.mutate(**{c.name: out[c.name].fill_null(0).cast("int64") for c in signals.counts})


def _counts(
    on: ir.Table, actions: ir.Table, counts: tuple[Count, ...], key: tuple[str, ...]
) -> ir.Table:
    """The counts per row key: the rows and the actions in one table, each count a running
    sum over the user's (or item's) events strictly earlier in microseconds (a range window
    ending 1 us before the row: an action at the impression's very time is not counted)."""
    imp = on.select(
        *key,
        _user=on[C.USER_ID],
        _item=on[C.ITEM_ID],
        _us=on[TS_US],
        _type=ibis.null().cast("string"),
        _row=ibis.literal(True),
    )
    act = actions.select(
        **{k: ibis.null().cast(on[k].type()) for k in key},
        _user=actions[C.USER_ID],
        _item=actions[C.ITEM_ID],
        _us=actions[TS_US],
        _type=actions[C.TYPE],
        _row=ibis.literal(False),
    )
    u = imp.union(act, distinct=False)
    sums = {}
    for c in counts:
        side = u._user if c.by == "user" else u._item
        before = ibis.window(group_by=side, order_by=u._us, range=(None, -1))
        sums[c.name] = ibis.cases((u._type.isin(c.types), 1), else_=0).sum().over(before)
    u = u.mutate(**sums)
    u = u.filter(u._row)
    return u.select(*key, *(c.name for c in counts))


def _history(on: ir.Table, actions: ir.Table, history: History, key: tuple[str, ...]) -> ir.Table:
    """The user's last ``history.n`` actions before each row, newest first, per row key.

    The history depends on (user, time) only: it is computed once per distinct pair (the items
    of a page are logged at one time) and joined back to the rows."""
    a = actions.filter(actions[C.TYPE].isin(history.types))
    a = a.select(
        _a_eid=a[C.EVENT_ID],
        _a_user=a[C.USER_ID],
        _a_item=a[C.ITEM_ID],
        _a_type=a[C.TYPE],
        _a_us=a[TS_US],
    )
    at = on.select(_user=on[C.USER_ID], _us=on[TS_US]).distinct()
    h = at.join(a, [at._user == a._a_user, a._a_us < at._us])
    newest = ibis.window(
        group_by=[h._user, h._us], order_by=[ibis.desc(h._a_us), ibis.desc(h._a_eid)]
    )
    h = h.mutate(_back=ibis.row_number().over(newest))
    h = h.filter(h._back < history.n)
    age = (h._us - h._a_us).cast("float64") / 1_000_000
    step = ibis.struct({"back": h._back, "item": h._a_item, "type": h._a_type, "age": age})
    seq = h.group_by([h._user, h._us]).aggregate(_steps=step.collect())
    steps = seq._steps.sort()
    seq = seq.select(
        seq._user,
        seq._us,
        **{
            HISTORY_ITEMS: steps.map(lambda s: s["item"]),
            HISTORY_TYPES: steps.map(lambda s: s["type"]),
            HISTORY_AGES: steps.map(lambda s: s["age"]),
        },
    )
    out = on.join(seq, [on[C.USER_ID] == seq._user, on[TS_US] == seq._us])
    return out.select(*key, HISTORY_ITEMS, HISTORY_TYPES, HISTORY_AGES)


class OnlineSignals:
    """The features of ``Signals`` at serving time, over the actions a live server holds.

    The same definitions as :func:`signals_ibis` (actions strictly before the impression's
    time; history newest first by (ts, event_id)), evaluated with binary searches over each
    user's and item's sorted action times.

    Parameters
    ----------
    signals
        The definitions.
    events
        The events held in memory (``EVENT_SCHEMA`` columns, or at least ``event_id``,
        ``ts``, ``user_id``, ``item_id``, ``type``): anything that is not one of the actions,
        or lacks a user or an item, is ignored; an ``event_id`` seen twice keeps its earliest
        copy. Remove bots' events before.
    """

    def __init__(self, signals: Signals, events: pa.Table) -> None:
        self.signals = signals
        rows = _first_actions(events)
        self._counts: list[dict[str, list[int]]] = []
        for c in signals.counts:
            keyed: dict[str, list[int]] = {}
            for us, _, user, item, typ in rows:
                if typ in c.types:
                    keyed.setdefault(user if c.by == "user" else item, []).append(us)
            self._counts.append(keyed)
        seqs: dict[str, list[tuple]] = {}
        for r in rows:
            if r[4] in signals.history.types:
                seqs.setdefault(r[2], []).append(r)
        self._history = {u: ([r[0] for r in rs], rs) for u, rs in seqs.items()}
        _log.debug("online signals over %d actions of %d users", len(rows), len(seqs))

    def _user(
        self, user: str, t: int, extra: Sequence[tuple[int, str, str]] = ()
    ) -> tuple[list[int], list, list, list]:
        """The user's counts (0 for item counts) and history at ``t``; ``extra`` are the
        user's actions the held events lack, ``(ts_us, item_id, type)`` oldest first."""
        extra = [r for r in extra if r[0] < t and r[2] in HEADS]
        counts = [
            bisect.bisect_left(keyed.get(user, ()), t) + sum(r[2] in c.types for r in extra)
            if c.by == "user"
            else 0
            for c, keyed in zip(self.signals.counts, self._counts, strict=True)
        ]
        n = self.signals.history.n
        times, seq = self._history.get(user, ((), ()))
        end = bisect.bisect_left(times, t)
        held = [(r[0], r[3], r[4]) for r in seq[max(0, end - n) : end]]
        newer = [r for r in extra if r[2] in self.signals.history.types]
        last = (held + newer)[-n:][::-1]
        return (
            counts,
            [r[1] for r in last],
            [r[2] for r in last],
            [max(0, t - r[0]) / 1_000_000 for r in last],
        )

    def evaluate(
        self,
        user_ids: list[str],
        item_ids: list[str],
        ts_us: list[int],
        recent: Mapping[str, Sequence[tuple[int, str, str]]] | None = None,
    ) -> pa.Table:
        """The features of impressions (user, candidate item, time in microseconds).

        The user's part is computed once per (user, time): a page's candidates share it.
        ``recent`` adds, per user, actions the held events lack (those a server accepted
        since its build: ``(ts_us, item_id, type)``, oldest first) to the user's counts and
        history, under the same rule (only those strictly before the impression). The items'
        counts stay those of the held events.

        Returns
        -------
        pa.Table
            One row per impression, columns ``Signals.columns`` (history lists newest first,
            empty when the user had no action before).

        Raises
        ------
        ValueError
            If the three lists differ in length.
        """
        if not len(user_ids) == len(item_ids) == len(ts_us):
            raise ValueError(
                f"evaluate needs one user, item and time per impression. Got {len(user_ids)}, "
                f"{len(item_ids)} and {len(ts_us)}."
            )
        counts = self.signals.counts
        by_item = [(k, keyed) for k, keyed in enumerate(self._counts) if counts[k].by == "item"]
        out: dict[int, list[int]] = {k: [] for k, _ in by_item}
        memo: dict[tuple[str, int], int] = {}  # (user, time) -> its row in ``users``
        users: list[tuple] = []
        which: list[int] = []
        for user, item, t in zip(user_ids, item_ids, ts_us, strict=True):
            j = memo.get((user, t))
            if j is None:
                j = memo[(user, t)] = len(users)
                users.append(self._user(user, t, (recent or {}).get(user, ())))
            which.append(j)
            for k, keyed in by_item:
                out[k].append(bisect.bisect_left(keyed.get(item, ()), t))
        per_user = np.asarray([u[0] for u in users], dtype=np.int64).reshape(
            len(users), len(counts)
        )
        for k, c in enumerate(counts):
            if c.by == "user":
                out[k] = per_user[which, k].tolist()
        take = pa.array(which, pa.int64())
        kinds = ((HISTORY_ITEMS, pa.string()), (HISTORY_TYPES, pa.string()))
        kinds += ((HISTORY_AGES, pa.float64()),)
        lists = {
            name: pa.array([u[col] for u in users], pa.list_(typ)).take(take)
            for col, (name, typ) in enumerate(kinds, start=1)
        }
        counted = {c.name: pa.array(out[k], pa.int64()) for k, c in enumerate(counts)}
        return pa.table({**counted, **lists})


def _first_actions(events: pa.Table) -> list[tuple[int, str, str, str, str]]:
    """``(ts_us, event_id, user_id, item_id, type)`` of the actions, first copy per event id,
    sorted by (ts, event_id)."""
    cols = [C.EVENT_ID, C.TS, C.USER_ID, C.ITEM_ID, C.TYPE]
    t = events.select(cols)
    mask = pc.and_(
        pc.is_in(t[C.TYPE], pa.array(HEADS)),
        pc.and_(pc.is_valid(t[C.USER_ID]), pc.is_valid(t[C.ITEM_ID])),
    )
    t = t.filter(pc.and_(mask, pc.is_valid(t[C.EVENT_ID])))
    us = t[C.TS].cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
    seen: dict[str, tuple] = {}
    for row in sorted(
        zip(
            us, *(t[c].to_pylist() for c in (C.USER_ID, C.TYPE, C.ITEM_ID, C.EVENT_ID)), strict=True
        )
    ):
        u, user, typ, item, eid = row
        seen.setdefault(eid, (u, eid, user, item, typ))
    return sorted(seen.values())
