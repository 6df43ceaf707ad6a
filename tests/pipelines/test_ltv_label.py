"""The long-term value label against a hand-computed oracle: the value of a user's actions on
the days after a page, its own day left out, censored days dropped."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from moodboard.data import columns as C
from moodboard.ingest import EVENT_SCHEMA
from moodboard.pipelines import connect
from moodboard.pipelines.ltv import DAY, FUTURE_VALUE, future_value_table

D0 = datetime(2026, 1, 5, 12, 0, 0)
DAY0 = (D0 - datetime(1970, 1, 1)).days
W = {"click": 1.0, "purchase": 3.0}


def _ev(eid: str, day: int, typ: str, user: str = "u1", hour: int = 0) -> dict:
    ts = D0 + timedelta(days=day, hours=hour)
    return {C.EVENT_ID: eid, C.TS: ts, C.USER_ID: user, C.TYPE: typ, C.ITEM_ID: "a"}


LOG = [
    _ev("i0", 0, "impression"),
    _ev("c0", 0, "click"),  # the page's own day: not counted
    _ev("c1", 1, "click"),
    _ev("c1b", 1, "click", hour=5),
    _ev("c1b", 1, "click", hour=5),  # a second copy of the same event: counted once
    _ev("s1", 1, "save"),  # no weight: 0
    _ev("p3", 3, "purchase"),
    _ev("i3", 3, "impression"),
    _ev("c4", 4, "click"),
    _ev("c9", 9, "click"),  # day 9: past day 0's window of 3 days, inside day 6's
    _ev("i6", 6, "impression"),
    _ev("v-i0", 0, "impression", user="u2"),  # u2 never comes back: 0
    _ev("v-c0", 0, "click", user="u2"),
    _ev("end", 9, "impression", user="u3"),  # censored (no later day is logged)
]


def _events() -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in LOG] for f in EVENT_SCHEMA}
    return pa.table(cols, schema=EVENT_SCHEMA)


def test_future_value_counts_the_next_days_against_a_hand_computed_oracle() -> None:
    t = connect("duckdb").create_table("ev", _events(), overwrite=True)
    got = future_value_table(t, 3, W)
    rows = {(u, d - DAY0): v for u, d, v in zip(*got.to_pydict().values(), strict=True)}
    # day 0 of u1: days 1..3 -> clicks 2 (c1, c1b once) + a purchase 3 = 5
    # day 3 of u1: days 4..6 -> c4 = 1; day 6: days 7..9 -> c9 = 1
    # u2's day 0: nothing later = 0; u3's day 9: its window ends after the log (censored)
    assert rows == {("u1", 0): 5.0, ("u1", 3): 1.0, ("u1", 6): 1.0, ("u2", 0): 0.0}
    assert got.column_names == [C.USER_ID, DAY, FUTURE_VALUE]


def test_a_log_shorter_than_the_horizon_gives_no_rows() -> None:
    t = connect("duckdb").create_table("ev", _events(), overwrite=True)
    assert future_value_table(t, 10, W).num_rows == 0
    with pytest.raises(ValueError, match="horizon_days"):
        future_value_table(t, 0, W)
