"""``rank/multihead`` as served: the rank query carries the request's clock and the user's
actions since the build (never a bot's, never one the build already read), and the serving
inputs put those actions first in the user's sequence and counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from moodboard.data import Candidates, IdMap, Request
from moodboard.data import columns as C
from moodboard.ingest import EVENT_SCHEMA
from moodboard.rank.inputs import ACTION_CODES
from moodboard.rank.multihead_serving import ServingInputs
from moodboard.rank.signals import OnlineSignals, Signals, SignalsConfig
from moodboard.surfaces.recent import BOTS, EVENTS_UNTIL, RECENT, RecentActions, rank_query

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SIGNALS = Signals.default(SignalsConfig(history_length=4))


def _event(n: int, user: str, item: str, typ: str, at: datetime) -> dict:
    return {C.EVENT_ID: f"e{n}", C.TS: at, C.USER_ID: user, C.ITEM_ID: item, C.TYPE: typ}


def _us(at: datetime) -> int:
    return round(at.timestamp() * 1_000_000)


def test_the_rank_query_holds_the_clock_and_only_new_actions_of_humans() -> None:
    buffer = RecentActions()
    buffer.add(
        [
            _event(1, "u1", "a", "click", T0 - timedelta(minutes=5)),  # the build read it
            _event(2, "u1", "b", "save", T0 + timedelta(minutes=1)),
            _event(3, "u1", "c", "click", T0 + timedelta(minutes=2)),
            _event(4, "bot", "b", "click", T0 + timedelta(minutes=1)),
        ]
    )
    resources = {RECENT: buffer, EVENTS_UNTIL: T0, BOTS: frozenset({"bot"})}
    at = T0 + timedelta(minutes=3)
    q = rank_query(Request(surface="feed", user_id="u1", ts=at), resources)
    assert q.ts_us == _us(at) and q.user == "u1"
    assert q.recent == (
        (_us(T0 + timedelta(minutes=1)), "b", "save"),
        (_us(T0 + timedelta(minutes=2)), "c", "click"),
    )
    assert rank_query(Request(surface="feed", user_id="bot", ts=at), resources).recent == ()
    assert rank_query(Request(surface="feed", ts=at), resources).recent == ()  # anonymous
    everything = rank_query(Request(surface="feed", user_id="u1", ts=at), {RECENT: buffer})
    assert len(everything.recent) == 3  # no build cutoff known: all held actions


def test_serving_inputs_put_the_new_actions_first_in_the_sequence_and_counts() -> None:
    ids = IdMap(list("abcdxyz"))
    held = [
        _event(1, "u1", "a", "click", T0 - timedelta(hours=2)),
        _event(2, "u1", "x", "purchase", T0 - timedelta(hours=1)),
        _event(3, "u2", "y", "click", T0 - timedelta(hours=1)),
    ]
    online = OnlineSignals(SIGNALS, pa.Table.from_pylist(held, schema=EVENT_SCHEMA))
    names = SIGNALS.count_names
    inputs = ServingInputs(ids, SIGNALS, online, names)
    cand = Candidates.from_scores(ids.indices(["y", "z"]), np.array([2.0, 1.0]), "dense/text")
    at = T0 + timedelta(minutes=10)
    recent = (
        (_us(T0 + timedelta(minutes=1)), "b", "save"),
        (_us(T0 + timedelta(minutes=2)), "c", "click"),
        (_us(at + timedelta(seconds=1)), "d", "click"),  # after the request: not seen
    )
    q = rank_query(Request(surface="feed", user_id="u1", ts=at), {})
    before = inputs(q, cand)
    after = inputs(replace(q, recent=recent), cand)
    assert before.history_items[0, :3].tolist() == [*ids.indices(["x", "a"]).tolist(), -1]
    newest = after.history_items[0, :4].tolist()
    assert newest == ids.indices(["c", "b", "x", "a"]).tolist()
    assert after.history_actions[0, :2].tolist() == [ACTION_CODES["click"], ACTION_CODES["save"]]
    np.testing.assert_allclose(after.history_age_s[0, :2], [480.0, 540.0])
    assert after.dense_column("user_n_click")[0] == before.dense_column("user_n_click")[0] + 1
    assert after.dense_column("user_n_save")[0] == before.dense_column("user_n_save")[0] + 1
    assert after.position.tolist() == [1, 1]  # fixed at serving
