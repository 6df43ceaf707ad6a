"""The multi-head ranker's rows: labels per head, point-in-time features, no leakage, the
serving-time features equal to the training rows, and the model's arrays.

The hand-checked log is the labels test's (``tests/pipelines/test_labels.py``): shopper ``u1``
searches at 10:00:00 (request ``r1``, items a..j shown at +1 s), acts on them between +0.5 s
and +30 min, and sees page ``r2`` (items a and z) at +30 s.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from moodboard.build.rank_rows import ranker_rows, workspace_ranker_rows
from moodboard.data import Candidates, IdMap
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.ingest import EVENT_SCHEMA, Workspace
from moodboard.pipelines import connect
from moodboard.rank.inputs import ACTION_CODES, HEADS
from moodboard.rank.personal import PERSONAL_FEATURES, PersonalFeatures
from moodboard.rank.rows import candidate_props, dense_names, serving_rows, to_inputs
from moodboard.rank.signals import (
    HISTORY_AGES,
    HISTORY_ITEMS,
    HISTORY_TYPES,
    OnlineSignals,
    Signals,
    SignalsConfig,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "pipelines"))
from test_labels import LOG, T, _ev  # the hand-checked log

SIGNALS = Signals.default(SignalsConfig(history_length=3))
FEATURES = SIGNALS.columns


def _rows(log: list[dict], signals: Signals = SIGNALS) -> pa.Table:
    events = connect("duckdb").create_table("log", pa.Table.from_pylist(log, schema=EVENT_SCHEMA))
    out = ranker_rows(events, signals=signals)
    assert out.reason is None
    return out.rows


def _by_key(t: pa.Table) -> dict[tuple[str, str], dict]:
    return {(r[C.REQUEST_ID], r[C.ITEM_ID]): r for r in t.to_pylist()}


def test_features_count_and_list_only_what_came_before_the_impression() -> None:
    got = _by_key(_rows(LOG))
    r2 = got[("r2", "z")]  # at +30 s: 13 earlier actions of u1
    assert [r2[f"user_n_{t}"] for t in HEADS] == [5, 1, 2, 2, 3]
    assert r2[HISTORY_ITEMS] == ["j", "h", "g"]  # newest first: +20 s, +16 s, +15 s
    assert r2[HISTORY_TYPES] == ["click", "purchase", "hide"]
    assert r2[HISTORY_AGES] == [10.0, 14.0, 15.0]
    first = got[("r1", "i")]  # at +1 s: only the early click on i (+0.5 s)
    assert first["user_n_click"] == 1 and first[HISTORY_AGES] == [0.5]
    assert first["item_n_positive"] == 1 and got[("r1", "a")]["item_n_positive"] == 0
    assert [got[("r1", "g")][h] for h in HEADS] == [1, 0, 0, 0, 1]  # the labels, per head
    bot = got[("r9", "a")]  # the bot's own first impression: nothing before it
    assert bot[HISTORY_ITEMS] == [] and bot["user_n_click"] == 0


def test_an_action_after_the_impression_changes_no_feature_of_it() -> None:
    planted = [
        _ev("plant-late", 1.000001, "purchase", "a", "r1"),  # 1 us after r1's impression of a
        _ev("plant-tie", 1, "save", "a", None),  # at the impression's very time
        _ev("plant-next", 29, "add_to_cart", "a", None),
    ]
    before, after = _by_key(_rows(LOG)), _by_key(_rows(LOG + planted))
    for key in (k for k in before if k[0] == "r1"):
        assert {f: after[key][f] for f in FEATURES} == {f: before[key][f] for f in FEATURES}
    assert after[("r1", "a")]["purchase"] == 1 and before[("r1", "a")]["purchase"] == 0
    # the planted actions are real: the next page (r2, at +30 s) sees all three
    assert after[("r2", "a")]["item_n_positive"] == before[("r2", "a")]["item_n_positive"] + 3
    assert after[("r2", "z")][HISTORY_ITEMS] == ["a", "j", "h"]  # the cart at +29 s, newest
    assert after[("r2", "z")]["user_n_purchase"] == before[("r2", "z")]["user_n_purchase"] + 1


def _random_log(seed: int = 3, users: int = 40, items: int = 30) -> list[dict]:
    """About 1,500 events: pages of impressions and actions on them, sub-second times, ties
    within a user, duplicated event ids, actions of other users' items in between."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["click", "save", "add_to_cart", "purchase", "hide"])
    rows: list[dict] = []
    for u in range(users):
        ts = T + timedelta(seconds=float(rng.uniform(0, 3_600)))
        for r in range(int(rng.integers(1, 5))):
            req = f"q{u}-{r}"
            shown = rng.choice(items, size=6, replace=False)
            for p, i in enumerate(shown, 1):
                rows.append(_ev(f"imp{len(rows)}", 0, "impression", f"i{i}", req, position=p))
                rows[-1] |= {C.TS: ts, C.USER_ID: f"u{u}"}
            for _ in range(int(rng.integers(0, 8))):
                if rng.random() > 0.2:  # else: the same microsecond as the previous event
                    ts += timedelta(microseconds=int(rng.integers(1, 90_000_000)))
                item = f"i{rng.choice(shown) if rng.random() < 0.8 else rng.integers(items)}"
                rows.append(_ev(f"a{len(rows)}", 0, str(rng.choice(kinds)), item, req))
                rows[-1] |= {C.TS: ts, C.USER_ID: f"u{u}"}
            ts += timedelta(minutes=float(rng.uniform(1, 200)))
    rows += [dict(r) for r in rows[::37]]  # duplicated event ids
    return rows


def test_serving_time_features_equal_the_training_rows() -> None:
    log = _random_log()
    signals = Signals.default(SignalsConfig(history_length=5))
    rows = _rows(log, signals)
    sample = rows.take(np.random.default_rng(0).choice(rows.num_rows, 300, replace=False))
    online = OnlineSignals(signals, pa.Table.from_pylist(log, schema=EVENT_SCHEMA))
    served = online.evaluate(
        sample.column(C.USER_ID).to_pylist(),
        sample.column(C.ITEM_ID).to_pylist(),
        sample.column("ts_us").to_pylist(),
    )
    assert served.column_names == list(signals.columns)
    for name in (*signals.count_names, HISTORY_ITEMS, HISTORY_TYPES):
        assert served.column(name).to_pylist() == sample.column(name).to_pylist(), name
    ages = (served.column(HISTORY_AGES).to_pylist(), sample.column(HISTORY_AGES).to_pylist())
    for a, b in zip(*ages, strict=True):
        assert len(a) == len(b) and np.allclose(a, b, rtol=0, atol=1e-6)
    lengths = [len(h) for h in sample.column(HISTORY_ITEMS).to_pylist()]
    assert 0 in lengths and 5 in lengths  # cold users and full histories were both sampled
    assert sum(sample.column("item_n_positive").to_pylist()) > 0
    assert online.evaluate([], [], []).schema.equals(served.schema)


def test_a_workspace_without_impressions_yields_no_rows_and_says_why(ws: Workspace) -> None:
    out = workspace_ranker_rows(ws, signals=SIGNALS)
    assert out.rows.num_rows == 0 and "no events" in out.reason
    # a shopper's purchases at irregular times (1 s apart exactly would be a bot's regular gaps)
    buys = [
        _ev(f"p{n}", n * 300 + (n * n % 7) * 40, "purchase", f"i{n % 3}", None, surface=None)
        for n in range(20)
    ]
    ws.events.append(pa.Table.from_pylist(buys, schema=EVENT_SCHEMA))
    out = workspace_ranker_rows(ws, signals=SIGNALS)
    assert out.rows.num_rows == 0
    assert "no impressions" in out.reason and "rank/noop" in out.reason
    assert set(FEATURES) <= set(out.rows.column_names)
    ws.events.append(pa.Table.from_pylist(LOG, schema=EVENT_SCHEMA))
    out = workspace_ranker_rows(ws, signals=SIGNALS)
    assert out.reason is None and out.rows.num_rows == 13


def test_rows_become_the_models_arrays_with_the_logged_retrieval_scores() -> None:
    ranked = {"p_click": 0.3, "utility": 1.2, "ltv": 4.0, "deferred": 0.0}  # the page's stages'
    props = {
        "a": {
            "sources": ["lexical/bm25", "dense/text"],
            "scores": {"bm25": 2.5, "dense": 0.75, **ranked},
        },
        "b": {"sources": ["dense/text"], "scores": {"dense": 0.5}},
    }
    log = [
        r | {C.PROPS: json.dumps(props[r[C.ITEM_ID]])}
        if r[C.TYPE] == "impression" and r[C.ITEM_ID] in props
        else r
        for r in LOG
    ]
    rows = _rows(log)
    names = dense_names(rows, SIGNALS)
    # a ranked page logs its head scores and utility: never features (the rank stage is
    # served before they exist)
    assert not [n for n in names if any(k in n for k in ranked)]
    assert names[-6:] == (
        "score:bm25",
        "has:bm25",
        "score:dense",
        "has:dense",
        "from:dense/text",
        "from:lexical/bm25",
    )
    ids = IdMap(list("zyxabcdefghij"))  # "i" is the 12th item; "q" and the bot's are absent
    x = to_inputs(rows, ids, SIGNALS)
    keys = [(r[C.REQUEST_ID], r[C.ITEM_ID]) for r in rows.to_pylist()]
    assert len(x) == len(keys)  # every shown item is in the catalog
    z = keys.index(("r2", "z"))
    assert x.item[z] == 0 and x.position[z] == 2
    assert x.history_items[z].tolist() == [ids.index("j"), ids.index("h"), ids.index("g")]
    want = [ACTION_CODES[t] for t in ("click", "purchase", "hide")]
    assert x.history_actions[z].tolist() == want
    assert x.history_age_s[z].tolist() == [10.0, 14.0, 15.0]
    a = keys.index(("r1", "a"))
    assert x.dense_column("score:bm25")[a] == 2.5 and x.dense_column("has:bm25")[a] == 1
    assert x.dense_column("from:lexical/bm25")[a] == 1
    b = keys.index(("r1", "b"))
    assert x.dense_column("has:bm25")[b] == 0 and x.dense_column("score:dense")[b] == 0.5
    assert x.labels[b].tolist() == [1, 0, 0, 0, 0]
    first = keys.index(("r1", "i"))  # one action before: padded after it
    assert x.history_items[first].tolist() == [ids.index("i"), -1, -1]
    assert x.history_actions[first].tolist() == [ACTION_CODES["click"], 0, 0]
    served = to_inputs(rows, ids, SIGNALS, names=(*names, "score:walks"))
    assert served.dense_column("score:walks").tolist() == [0.0] * len(served)
    no_j = to_inputs(rows, IdMap([i for i in "zyxabcdefghi"]), SIGNALS)  # "j" left the catalog
    assert len(no_j) == len(keys) - 1  # its impression is left out ...
    r2 = no_j.take(np.array([keys.index(("r2", "a")) - 1]))
    assert r2.history_items[0].tolist() == [ids.index("h"), ids.index("g"), -1]
    assert r2.history_age_s[0].tolist() == [14.0, 15.0, 0.0]  # ... and skipped in histories
    with pytest.raises(KeyError, match="score:nope"):
        x.dense_column("score:nope")


def test_signals_refuse_unknown_actions_and_duplicate_names() -> None:
    from moodboard.rank.signals import Count, History

    with pytest.raises(ValueError, match="types"):
        Signals((Count("n", "user", ("view",)),), History(3))
    with pytest.raises(ValueError, match="distinct"):
        Signals((Count("n", "user", ("click",)), Count("n", "item", ("save",))), History(3))


def test_a_served_requests_model_inputs_equal_its_logged_training_row() -> None:
    """The server logs a page's candidates (``candidate_props``); the training row of each
    shown item and the serving-time row of the same candidate give the same model inputs."""
    ids = IdMap(list("zyxabcdefghij"))
    cand = Candidates(
        np.array([ids.index("a"), ids.index("z")]),
        {"bm25": np.array([2.123456789, np.nan]), "retrieval": np.array([0.1, 0.05])},
        np.array(["lexical/bm25+dense/text", "dense/text"], dtype=object),
    )
    logged = dict(zip("az", candidate_props(cand), strict=True))
    assert logged["z"] == {"sources": ["dense/text"], "scores": {"retrieval": 0.05}}
    log = [
        r | {C.PROPS: json.dumps(logged[r[C.ITEM_ID]])}
        if r[C.TYPE] == "impression" and r[C.REQUEST_ID] == "r2"
        else r
        for r in LOG
    ]
    rows = _rows(log)
    names = dense_names(rows, SIGNALS)
    assert {"score:bm25", "from:lexical/bm25", "user_n_hide"} <= set(names)
    r2 = [k for k, r in enumerate(rows.to_pylist()) if r[C.REQUEST_ID] == "r2"]
    trained = to_inputs(rows, ids, SIGNALS).take(np.array(r2))
    online = OnlineSignals(SIGNALS, pa.Table.from_pylist(log, schema=EVENT_SCHEMA))
    at = rows.column("ts_us")[r2[0]].as_py()
    served = to_inputs(serving_rows(cand, ids, "u1", at, online), ids, SIGNALS, names)
    assert served.item.tolist() == trained.item.tolist()
    np.testing.assert_allclose(served.dense, trained.dense, rtol=0, atol=1e-6)
    personal = _personal(ids)  # the history-to-item features too
    trained_p = to_inputs(rows, ids, SIGNALS, personal=personal).take(np.array(r2))
    served_p = serving_rows(cand, ids, "u1", at, online)
    served_p = to_inputs(served_p, ids, SIGNALS, trained_p.dense_names, personal)
    np.testing.assert_allclose(served_p.dense, trained_p.dense, rtol=0, atol=1e-6)
    assert np.abs(served_p.dense[:, -len(PERSONAL_FEATURES) :]).sum() > 0
    assert served.dense_column("score:bm25")[0] == np.float32(2.123457)
    for field in ("history_items", "history_actions", "history_age_s"):
        assert np.array_equal(getattr(served, field), getattr(trained, field)), field


def _personal(ids: IdMap) -> PersonalFeatures:
    """Features over ``ids``: item ``z`` shares its type (0) with ``j`` and ``g``; random unit
    vectors."""
    types = np.full(len(ids), 2)
    types[ids.indices(["z", "j", "g"])] = 0
    types[ids.index("h")] = 1
    v = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    return PersonalFeatures(v / np.linalg.norm(v, axis=1, keepdims=True), {"p_type": types})


def test_personal_features_weigh_the_rows_history_by_action() -> None:
    """Row (r2, z) has history j (click), h (purchase), g (hide): z shares j's and g's type,
    so its type share is click / (click + purchase) = 1/9 (a hide weighs nothing)."""
    rows = _rows(LOG)
    ids = IdMap(list("zyxabcdefghij"))
    personal = _personal(ids)
    x = to_inputs(rows, ids, SIGNALS, personal=personal)
    assert x.dense_names[-len(PERSONAL_FEATURES) :] == PERSONAL_FEATURES
    keys = [(r[C.REQUEST_ID], r[C.ITEM_ID]) for r in rows.to_pylist()]
    z = keys.index(("r2", "z"))
    assert x.dense_column("p_type")[z] == pytest.approx(1 / 9)
    assert x.dense_column("p_seen")[z] == 0 and x.dense_column("p_colour")[z] == 0
    for k in range(len(x)):  # each row: the single-history features of search
        one = personal(x.item[k : k + 1], x.history_items[k], _weights(x.history_actions[k]))
        np.testing.assert_allclose(x.dense[k, -len(PERSONAL_FEATURES) :], one[0], atol=1e-6)
    with pytest.raises(ConfigError, match="PersonalFeatures"):
        to_inputs(rows, ids, SIGNALS, names=x.dense_names)
    assert to_inputs(rows, ids, SIGNALS).dense_names == dense_names(rows, SIGNALS)


def _weights(actions: np.ndarray) -> np.ndarray:
    return np.array([{1: 1.0, 2: 3.0, 3: 4.0, 4: 8.0}.get(int(a), 0.0) for a in actions])
