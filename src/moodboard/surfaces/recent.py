"""The shoppers' actions of the last seconds: what the server accepted since the live build.

A build reads each user's history from the event log as it was then; ``RecentActions`` holds
what ``POST /events`` accepted after it (and, after a restart, what the write-ahead log still
holds), so the next page can follow a shopper who just clicked, without a rebuild, as
TransAct's real-time sequence does. It is bounded: at most ``per_user`` actions per user (the
newest) and ``users`` users (the least recently active leave first). Reads return the actions
oldest first with the weight of each (the weights of the build's interactions, so a recent
save counts as a logged one), and only those before the request's time: a surface reads the
request's clock (the simulated one in a simulation), never the wall clock. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Request
from moodboard.data import columns as C
from moodboard.data.records import INTERACTION_WEIGHTS
from moodboard.rank import RankQuery


class RecentConfig(BaseModel):
    """Bounds of the buffer and the weight of each action type kept (others are ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_user: int = Field(default=50, ge=1, le=1_000)
    users: int = Field(default=100_000, ge=1)
    weights: dict[str, float] = Field(default_factory=lambda: dict(INTERACTION_WEIGHTS))


class RecentAction(NamedTuple):
    """One accepted action: the item, its type, its weight and when it happened (UTC)."""

    item_id: str
    action: str
    weight: float
    ts: datetime


def _when(value: Any) -> datetime:
    """An event's ``ts`` as an aware UTC datetime; now when absent (the server stamps it so)
    or in a form other than ISO 8601 (the event was accepted: its time is close to now)."""
    ts = value
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            ts = None
    if not isinstance(ts, datetime):
        return datetime.now(UTC)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class RecentActions:
    """Each user's newest accepted actions, bounded in users and per user.

    Parameters
    ----------
    config
        Bounds and action weights; default ``RecentConfig()``.
    """

    def __init__(self, config: RecentConfig | None = None) -> None:
        self.config = config or RecentConfig()
        self._users: OrderedDict[str, deque[RecentAction]] = OrderedDict()
        self._ids: dict[str, deque[str]] = {}  # the user's last event ids: a retry is not new
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._users)

    def add(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Keep the actions among ``events`` (accepted rows: ``user_id``, ``item_id``, ``type``,
        optional ``ts`` and ``event_id``); an ``event_id`` already held for that user is
        skipped. Returns how many were kept."""
        kept = 0
        with self._lock:
            for e in events:
                action, user, item = e.get(C.TYPE), e.get(C.USER_ID), e.get(C.ITEM_ID)
                weight = self.config.weights.get(str(action))
                if weight is None or not user or not item:
                    continue
                user, eid = str(user), e.get(C.EVENT_ID)
                ids = self._ids.setdefault(user, deque(maxlen=2 * self.config.per_user))
                if eid and str(eid) in ids:
                    continue
                queue = self._users.get(user)
                if queue is None:
                    queue = self._users[user] = deque(maxlen=self.config.per_user)
                self._users.move_to_end(user)
                queue.append(RecentAction(str(item), str(action), weight, _when(e.get(C.TS))))
                if eid:
                    ids.append(str(eid))
                kept += 1
            while len(self._users) > self.config.users:
                gone, _ = self._users.popitem(last=False)
                self._ids.pop(gone, None)
        return kept

    def __call__(
        self, user: str | None, before: datetime | None = None
    ) -> tuple[RecentAction, ...]:
        """The user's held actions, oldest first (none for an unknown or absent user); with
        ``before`` (the request's time), only those that happened before it."""
        if not user:
            return ()
        with self._lock:
            queue = self._users.get(user)
            held = tuple(queue) if queue else ()
        if before is None:
            return held
        before = before if before.tzinfo else before.replace(tzinfo=UTC)
        return tuple(a for a in held if a.ts < before)


#: Resource names: the buffer, the newest event time the live build read (a ``datetime``), and
#: the accounts the build flagged as bots (a set of user ids).
RECENT, EVENTS_UNTIL, BOTS = "recent", "events_until", "bots"


def recent_actions(request: Request, resources: Mapping[str, Any]) -> tuple[RecentAction, ...]:
    """The request's user's actions of the ``recent`` buffer the live build did not see,
    before the request's time (a simulation's clock in a simulation).

    Left out: actions at or before the build's newest event (``events_until``: after a
    rebuild the buffer still holds actions the new version learned from; they must not count
    twice), and every action of an account the build flagged as a bot (``bots``).
    """
    buffer = resources.get(RECENT)
    user = request.user_id
    if buffer is None or not user or user in resources.get(BOTS, ()):
        return ()
    since = resources.get(EVENTS_UNTIL)
    return tuple(a for a in buffer(user, before=request.ts) if since is None or a.ts > since)


def rank_query(
    request: Request,
    resources: Mapping[str, Any],
    text: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> RankQuery:
    """What the rank stage may know of ``request``: who, when (the request's clock, a
    simulation's in a simulation) and the user's actions since the build (``recent_actions``).
    """
    us = round(request.ts.timestamp() * 1_000_000)
    recent = tuple(
        (round(a.ts.timestamp() * 1_000_000), a.item_id, a.action)
        for a in recent_actions(request, resources)
    )
    return RankQuery(
        request.user_id, request.request_id, text, dict(context or {}), ts_us=us, recent=recent
    )
