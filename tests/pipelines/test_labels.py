"""Impression labels on a hand-checkable log: one impression per rule, read off by eye.

Request ``r1`` is a search for "blue shirt" (the query is only on its ``search`` event) showing
items a..j at 10:00:01; request ``r2`` (another page of the same shopper) shows items a and z.
Each item of ``r1`` tests one rule; the comment says which and the grade it must get.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import pyarrow as pa
import pytest
from pydantic import ValidationError

from moodboard.data import columns as C
from moodboard.ingest import EVENT_SCHEMA
from moodboard.pipelines import LabelsConfig, connect, labels_table
from moodboard.pipelines.interactions import fetch
from moodboard.pipelines.labels import HEADS, HEADS_SCHEMA, LABELS_KEY, impression_heads

T = datetime(2026, 1, 5, 10, 0, 0)


def _ev(eid: str, sec: float, typ: str, item: str | None, req: str | None, **kw) -> dict:
    return {
        C.EVENT_ID: eid,
        C.TS: T + timedelta(seconds=sec),
        C.USER_ID: kw.pop("user", "u1"),
        C.TYPE: typ,
        C.ITEM_ID: item,
        C.REQUEST_ID: req,
        C.SURFACE: kw.pop("surface", "search"),
        **kw,
    }


LOG = [
    _ev("s1", 0, "search", None, "r1", query="blue shirt"),
    *(_ev(f"i-{x}", 1, "impression", x, "r1", position=p) for p, x in enumerate("abcdefghij", 1)),
    _ev("i-a-again", 2, "impression", "a", "r1", position=9),  # a re-render: first copy kept
    # a: nothing happened -> 1 (shown and skipped)
    _ev("c-b", 10, "click", "b", "r1"),  # b: click -> 2
    _ev("c-c", 10, "click", "c", "r1"),
    _ev("s-c", 11, "save", "c", "r1", board_id="b1"),  # c: click + save -> 3 (strongest wins)
    _ev("k-d", 12, "add_to_cart", "d", "r1"),  # d: cart -> 4
    _ev("k-e", 12, "add_to_cart", "e", "r1"),
    _ev("p-e", 13, "purchase", "e", "r1"),  # e: purchase -> 5
    _ev("h-f", 14, "hide", "f", "r1"),  # f: hidden -> 0
    _ev("c-g", 14, "click", "g", "r1"),
    _ev("h-g", 15, "hide", "g", "r1"),  # g: click then hide -> 0 (a hide beats a click)
    _ev("h-h", 14, "hide", "h", "r1"),
    _ev("p-h", 16, "purchase", "h", "r1"),  # h: hide, then purchase -> 5 (purchase beats hide)
    _ev("c-i-early", 0.5, "click", "i", "r1"),  # i: a click before the impression -> 1
    _ev("c-j-late", 1 + 30 * 60 + 1, "click", "j", "r1"),  # j: click 1 s past the window -> 1
    _ev("c-j-other", 20, "click", "j", "r2"),  # ... and a click of another request -> 1
    _ev("i2-a", 30, "impression", "a", "r2", position=1, query="shirts"),
    _ev("i2-z", 30, "impression", "z", "r2", position=2, query="shirts"),
    _ev("c2-z", 30 + 30 * 60, "click", "z", "r2"),  # z: click at the window's edge -> 2
    _ev("i-none", 40, "impression", "q", None),  # no request: cannot be labelled, left out
    _ev("i-bot", 40, "impression", "a", "r9", user="bot"),
    _ev("c-bot", 41, "click", "a", "r9", user="bot"),
]
LABELS = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 0, "g": 0, "h": 5, "i": 1, "j": 1}


@pytest.fixture(scope="module")
def events() -> ibis.Table:
    return connect("duckdb").create_table("log", pa.Table.from_pylist(LOG, schema=EVENT_SCHEMA))


def _by_key(t: pa.Table) -> dict[tuple[str, str], dict]:
    return {(r[C.REQUEST_ID], r[C.ITEM_ID]): r for r in t.to_pylist()}


def test_each_rule_gives_its_grade(events: ibis.Table) -> None:
    got = _by_key(labels_table(events))
    assert {i: r["label"] for (q, i), r in got.items() if q == "r1"} == LABELS
    assert got[("r2", "a")]["label"] == 1 and got[("r2", "z")]["label"] == 2
    assert got[("r9", "a")]["label"] == 2
    assert len(got) == 13  # one row per (request, item): the re-rendered "a" and "q" are not rows


def test_rows_keep_what_a_ranker_groups_by(events: ibis.Table) -> None:
    got = _by_key(labels_table(events))
    a = got[("r1", "a")]
    assert (a[C.EVENT_ID], a[C.POSITION], a[C.TS]) == ("i-a", 1, T + timedelta(seconds=1))
    assert (a[C.USER_ID], a[C.SURFACE]) == ("u1", "search")
    assert {r[C.QUERY] for (q, _), r in got.items() if q == "r1"} == {"blue shirt"}  # from search
    assert got[("r2", "z")][C.QUERY] == "shirts"  # the impression's own query


def test_the_window_is_a_setting(events: ibis.Table) -> None:
    got = _by_key(labels_table(events, LabelsConfig(window_minutes=31)))
    assert got[("r1", "j")]["label"] == 2  # the late click now counts
    got = _by_key(labels_table(events, LabelsConfig(window_minutes=0.2)))  # 12 seconds
    late = {"f": 1, "g": 1, "h": 1}  # their actions came 13 s or more after the impression
    assert {i: r["label"] for (q, i), r in got.items() if q == "r1"} == LABELS | late
    assert got[("r1", "e")]["label"] == 5  # the purchase 12 s after: on the edge, counted
    with pytest.raises(ValidationError, match="window_minutes"):
        LabelsConfig(window_minutes=0)


def test_as_of_keeps_only_impressions_whose_window_has_closed(events: ibis.Table) -> None:
    as_of = T + timedelta(minutes=30, seconds=15)  # r1's windows closed at 30:01, r2's at 30:30
    got = _by_key(labels_table(events, as_of=as_of))
    assert {i: r["label"] for (q, i), r in got.items()} == LABELS
    assert set(got) == {("r1", i) for i in LABELS}
    early = _by_key(labels_table(events, as_of=T + timedelta(minutes=30, seconds=0.5)))
    assert not early  # every window was still open: no label is known yet


def test_excluded_users_lose_their_impressions(events: ibis.Table) -> None:
    bots = ibis.memtable({C.USER_ID: ["bot"]})
    got = _by_key(labels_table(events, exclude_users=bots))
    assert ("r9", "a") not in got and len(got) == 12


HEADS_OF = {
    "a": set(),
    "b": {"click"},
    "c": {"click", "save"},
    "d": {"add_to_cart"},
    "e": {"add_to_cart", "purchase"},
    "f": {"hide"},
    "g": {"click", "hide"},  # no precedence: each head learns its own action
    "h": {"hide", "purchase"},
    "i": set(),  # the click came before the impression
    "j": set(),  # past the window, and another request's click
}


def heads_table(events: ibis.Table, config: LabelsConfig | None = None) -> pa.Table:
    return fetch(impression_heads(events, config), HEADS_SCHEMA, LABELS_KEY)


def test_heads_are_one_binary_label_per_action_on_the_same_rows() -> None:
    log = [
        r | {"props": '{"sources": ["lexical/bm25"]}'} if r["type"] == "impression" else r
        for r in LOG
    ]
    events = connect("duckdb").create_table("log", pa.Table.from_pylist(log, schema=EVENT_SCHEMA))
    heads = _by_key(heads_table(events))
    assert set(heads) == set(_by_key(labels_table(events)))  # the same impressions
    got = {i: {h for h in HEADS if r[h]} for (q, i), r in heads.items() if q == "r1"}
    assert got == HEADS_OF
    assert heads[("r2", "z")]["click"] == 1 and heads[("r2", "a")]["click"] == 0
    a = heads[("r1", "a")]
    assert (a[C.EVENT_ID], a[C.POSITION], a[C.QUERY]) == ("i-a", 1, "blue shirt")
    assert a["props"] == '{"sources": ["lexical/bm25"]}'
    assert a["ts_us"] == int((a[C.TS] - datetime(1970, 1, 1)) / timedelta(microseconds=1))
    late = _by_key(heads_table(events, LabelsConfig(window_minutes=31)))
    assert late[("r1", "j")]["click"] == 1
