"""The engagement pipelines give exactly the same tables on DuckDB and on Spark.

The event log is hand-made and seeded: about 3,000 events of 280 users over 120 items and three
UTC days (with sessions across midnight), sub-second timestamps, ties on ``ts`` inside a user,
exact duplicates of event ids across part files, conflicting duplicates, impressions, hides and
searches, a user clicking 150 times within two minutes and one clicking all day long. Every job
runs on both engines and the tables are compared with ``pa.Table.equals``: same schema, same
rows, same order, floats bit for bit (graph scores are integer sums of contributions rounded to
1e-9, so Spark's summation order cannot change them). One Spark session serves the whole module.
On DuckDB the outputs are also checked against their definitions (a plain-Python graph oracle).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from moodboard.config import BotsConfig
from moodboard.data import columns as C
from moodboard.ingest import EVENT_SCHEMA, Workspace
from moodboard.pipelines import (
    OUTPUTS,
    GraphConfig,
    InteractionsConfig,
    PipelinesConfig,
    SequencesConfig,
    SplitsConfig,
    bots_table,
    coengagement,
    coengagement_graph_table,
    connect,
    interactions,
    run_pipelines,
    time_split_table,
)
from moodboard.pipelines.interactions import datetime_us
from moodboard.pipelines.labels import LabelsConfig, labels_table

pytestmark = pytest.mark.spark

START = datetime(2026, 1, 5, 20, 0, 0)
KEPT = ("click", "save", "add_to_cart", "purchase")
CONFIG = PipelinesConfig(
    interactions=InteractionsConfig(max_per_minute=40, max_per_day=300),
    sequences=SequencesConfig(max_length=8),
    graph=GraphConfig(session_gap_minutes=20, half_life_days=1.5, top_n=5),
    splits=SplitsConfig(test_days=0.75, min_interactions=3),
)
AS_OF = START + timedelta(hours=40, microseconds=3)
TIME_GRAPH = GraphConfig(window="time", window_minutes=90, reference_time=START + timedelta(days=1))


def _event_log(seed: int = 5) -> pa.Table:
    """About 2,900 events with every awkward case the jobs must agree on."""
    rng = np.random.default_rng(seed)
    types = np.array(["impression", "click", "save", "add_to_cart", "purchase", "hide", "search"])
    p = np.array([0.35, 0.3, 0.12, 0.07, 0.04, 0.04, 0.08])
    rows: list[dict] = []
    for u in range(280):
        ts = START + timedelta(seconds=float(rng.uniform(0, 2 * 86_400)))
        for s in range(int(rng.integers(1, 4))):  # sessions: one request each (no rng drawn)
            for n in range(int(rng.integers(1, 9))):
                if rng.random() > 0.12:  # else: a tie with the previous event
                    ts += timedelta(microseconds=int(rng.integers(1_000_000, 300_000_000)))
                kind = str(rng.choice(types, p=p))
                query = (
                    f"q{u % 9}" if kind == "search" or (kind == "impression" and u % 3) else None
                )
                rows.append(
                    {
                        C.EVENT_ID: f"e{len(rows):05d}-{rng.integers(0, 1000):03d}",
                        C.TS: ts,
                        C.USER_ID: f"u{u:03d}",
                        C.TYPE: kind,
                        C.ITEM_ID: None if kind == "search" else f"i{rng.zipf(1.4) % 120:03d}",
                        C.BOARD_ID: f"b{u % 40}" if kind == "save" else None,
                        C.REQUEST_ID: f"r{u:03d}-{s}" if u % 11 else None,
                        C.QUERY: query + ("" if kind == "search" else "!") if query else None,
                        C.SURFACE: "search" if u % 2 else "feed",
                        C.POSITION: n + 1 if kind == "impression" else None,
                        C.PROPS: _props(u, n) if kind == "impression" else None,
                    }
                )
            ts += timedelta(hours=float(rng.uniform(1, 20)))
    for n in range(150):  # a bot: 150 clicks in two minutes
        rows.append(_row(f"fast{n:03d}", START + timedelta(milliseconds=800 * n), "bot-fast", n))
    day = START.replace(hour=4)
    for n in range(320):  # an abuser: a click every 2 minutes for 10 hours of one day
        rows.append(_row(f"slow{n:03d}", day + timedelta(minutes=2 * n), "bot-slow", n))
    for order in range(2):  # a store's customer: two orders of 45 lines, each at one instant
        at = START + timedelta(days=order, hours=9)
        for n in range(45):
            row = _row(f"order{order}-{n:02d}", at, "buyer", n)
            rows.append(row | {C.TYPE: "purchase", C.ITEM_ID: f"i{n:03d}"})
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def _props(u: int, n: int) -> str:
    """What the server logs with a shown item: its sources and their scores (no rng drawn)."""
    sources = ["lexical/bm25", "dense/text"][: 1 + (u + n) % 2]
    scores = {"bm25": round(1.5 + 0.37 * n, 3), "retrieval": 1 / (60 + n)}
    return json.dumps({"sources": sources, "scores": scores if u % 5 else {"retrieval": 0.5}})


def _row(eid: str, ts: datetime, user: str, n: int) -> dict:
    return {C.EVENT_ID: eid, C.TS: ts, C.USER_ID: user, C.TYPE: "click", C.ITEM_ID: f"i{n % 7:03d}"}


@pytest.fixture(scope="module")
def log() -> pa.Table:
    return _event_log()


@pytest.fixture(scope="module")
def ws(log: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("engines") / "ws")
    ws.events.root.mkdir(parents=True)
    ws.events.append(log)
    replays = log.take(np.arange(0, log.num_rows, 29))  # exact duplicates, in another part file
    clash = log.filter(pc.is_in(log[C.TYPE], pa.array(KEPT))).slice(0, 20)
    clash = clash.set_column(1, C.TS, pc.add(clash[C.TS], pa.scalar(timedelta(seconds=1))))
    ws.events.append(pa.concat_tables([replays, clash]))  # conflicting copies: later, kept out
    return ws


@pytest.fixture(scope="module")
def spark() -> Iterator[ibis.BaseBackend]:
    """One local[2] session for the module, started with the JVM's quick JIT only.

    ``-XX:TieredStopAtLevel=1`` halves the JVM's CPU time on jobs this short (measured here:
    31 s -> 15 s for the session plus every pipeline). That mode shrinks the JVM's code cache to
    48 MB, which Spark's generated classes for every pipeline filled in one CI run ("Out of space
    in CodeCache for adapters"), so the cache is set back to the tiered default of 240 MB.
    ``connect("spark")`` then reuses the session
    and sets the rest of the recipe (UTC session time zone, shuffle partitions).
    """
    SparkSession = pytest.importorskip("pyspark.sql").SparkSession

    clock = time.perf_counter()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (
        SparkSession.builder.master("local[2]")
        .config(
            "spark.driver.extraJavaOptions",
            "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m",
        )
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp())
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    con = connect("spark")
    print(f"spark session in {time.perf_counter() - clock:.1f} s")
    yield con
    session.stop()


@pytest.fixture(scope="module")
def outputs(ws: Workspace, spark: ibis.BaseBackend) -> dict[str, dict[str, pa.Table]]:
    out = {}
    for name, engine in (("duckdb", "duckdb"), ("spark", "spark")):  # the names the CLI passes
        clock = time.perf_counter()
        out[name] = run_pipelines(ws, engine, CONFIG)
        print(f"{name}: all pipelines in {time.perf_counter() - clock:.1f} s")
    return out


@pytest.mark.parametrize(
    "name",
    [
        "interactions",
        "removed_users",
        "sequences",
        "graph",
        "split_time",
        "split_leave_last_out",
        "labels",
        "bots",
    ],
)
def test_every_pipeline_is_exactly_equal_on_duckdb_and_spark(outputs: dict, name: str) -> None:
    duck, spark = outputs["duckdb"][name], outputs["spark"][name]
    assert duck.num_rows > 0
    assert duck.schema.equals(spark.schema)
    assert duck.equals(spark), _first_difference(duck, spark)


def _first_difference(a: pa.Table, b: pa.Table) -> str:
    ra, rb = a.to_pylist(), b.to_pylist()
    for i, (x, y) in enumerate(zip(ra, rb, strict=False)):
        if x != y:
            return f"row {i}: duckdb {x} != spark {y}"
    return f"{len(ra)} rows != {len(rb)} rows"


def test_time_window_graph_fixed_times_and_session_groups_are_equal_too(
    ws: Workspace, spark: ibis.BaseBackend
) -> None:
    graph = TIME_GRAPH
    splits = SplitsConfig(cutoff=START + timedelta(hours=30, microseconds=7))
    group_schema = pa.schema([("group", pa.string()), (C.ITEM_ID, pa.string())])
    tables = []
    for con in (connect("duckdb"), spark):
        events = con.read_parquet(ws.events.glob())
        kept = interactions(events, CONFIG.interactions).cache()
        groups = coengagement(events, KEPT, 20.0).to_pyarrow().select(group_schema.names)
        tables.append(
            (
                coengagement_graph_table(kept, graph),
                time_split_table(kept, splits),
                groups.cast(group_schema).sort_by([(n, "ascending") for n in group_schema.names]),
                labels_table(events, LabelsConfig(window_minutes=7.5), as_of=AS_OF),
            )
        )
        kept.release()
    for duck, spk in zip(*tables, strict=True):
        assert duck.num_rows > 0
        assert duck.equals(spk), _first_difference(duck, spk)


def test_bots_are_removed_and_reported(outputs: dict) -> None:
    out = outputs["duckdb"]
    removed = out["removed_users"].to_pylist()
    assert [(r[C.USER_ID], r["reason"]) for r in removed] == [
        ("bot-fast", "per_minute"),
        ("bot-slow", "per_day"),
    ]
    assert removed[0]["peak_per_minute"] == 75  # 0.8 s apart: 75 clicks within any 60 s
    assert removed[1]["n_actions"] == 320
    assert not {"bot-fast", "bot-slow"} & set(out["interactions"][C.USER_ID].to_pylist())
    # an order's 45 lines are one checkout, not 45 actions within a minute
    assert out["interactions"][C.USER_ID].to_pylist().count("buyer") == 90


#: Thresholds low enough that the hand-made log's shoppers trip every rule (on both engines).
TOUCHY = BotsConfig(
    max_per_minute=40,
    max_per_day=300,
    max_same_query_per_day=1,
    max_gap_cv=0.6,
    min_gaps=3,
    min_item_entropy=2.5,
    min_entropy_actions=6,
)


def test_bot_rules_flag_the_same_accounts_with_the_same_statistics_on_both_engines(
    ws: Workspace, spark: ibis.BaseBackend
) -> None:
    duck, spk = (
        bots_table(con.read_parquet(ws.events.glob()), TOUCHY) for con in (connect("duckdb"), spark)
    )
    assert duck.flagged.equals(spk.flagged), _first_difference(duck.flagged, spk.flagged)
    assert all(n > 0 for n in duck.counts().values()), duck.counts()  # every rule fired
    stats = duck.flagged.to_pylist()
    assert {r["user_id"]: r["rule"] for r in stats if r["user_id"].startswith("bot")} == {
        "bot-fast": "per_minute",
        "bot-slow": "per_day",
    }
    cv = [r["gap_cv"] for r in stats if r["gap_cv"] is not None]
    assert len({round(x, 3) for x in cv}) > 5  # real, varied floating statistics were compared


def test_default_bot_rules_flag_only_the_bots(outputs: dict) -> None:
    got = outputs["duckdb"]["bots"].to_pylist()
    assert [(r["user_id"], r["rule"]) for r in got] == [
        ("bot-fast", "per_minute"),  # 75 clicks within a minute
        ("bot-slow", "regular_gaps"),  # a click every 2 minutes on the dot (320: under 1,000)
    ]  # not "buyer": the 45 lines of an order at one instant are one action, no 0 s gaps
    p = np.array([22, 22, 22, 21, 21, 21, 21]) / 150  # bot-fast's 150 clicks over 7 items
    assert got[0]["item_entropy"] == round(float(-(p * np.log2(p)).sum()), 6)
    assert got[1]["gap_cv"] == 0.0


def test_interactions_are_deduplicated_weighted_human_actions(log: pa.Table, outputs: dict) -> None:
    got = outputs["duckdb"]["interactions"]
    rows = [r for r in log.to_pylist() if r[C.TYPE] in KEPT and not r[C.USER_ID].startswith("bot")]
    assert got.num_rows == len(rows)  # every duplicate dropped, the first copy kept
    assert sorted(got[C.EVENT_ID].to_pylist()) == sorted(r[C.EVENT_ID] for r in rows)
    first = {r[C.EVENT_ID]: r[C.TS] for r in rows}
    kept = zip(got[C.EVENT_ID].to_pylist(), got[C.TS].to_pylist(), strict=True)
    assert all(first[e] == t for e, t in kept)
    weights = dict(zip(got[C.TYPE].to_pylist(), got["weight"].to_pylist(), strict=True))
    assert weights == CONFIG.interactions.weights


def test_sequences_are_the_last_interactions_in_time_then_event_id_order(outputs: dict) -> None:
    out = outputs["duckdb"]
    by_user: dict[str, list[tuple]] = {}
    for r in out["interactions"].to_pylist():
        by_user.setdefault(r[C.USER_ID], []).append((r[C.TS], r[C.EVENT_ID], r[C.ITEM_ID]))
    seqs = out["sequences"].to_pylist()
    assert len(seqs) == len(by_user)
    ties = 0
    for s in seqs:
        want = sorted(by_user[s[C.USER_ID]])[-8:]
        assert s["item_ids"] == [w[2] for w in want]
        assert s["ts"] == [w[0] for w in want]
        ties += len(want) - len({w[0] for w in want})
    assert ties > 0  # the tie-break was exercised


def test_splits_follow_their_definitions(outputs: dict) -> None:
    out = outputs["duckdb"]
    by_user: dict[str, list[tuple]] = {}
    for r in out["split_leave_last_out"].to_pylist():  # sorted by user, ts, event_id
        by_user.setdefault(r[C.USER_ID], []).append(r["split"])
    for splits in by_user.values():
        want = ["train"] * len(splits)
        if len(splits) >= 3:
            want[-2:] = ["validation", "test"]
        assert splits == want
    assert sum(len(s) >= 3 for s in by_user.values()) > 50
    rows = out["split_time"].to_pylist()
    cutoff = max(r[C.TS] for r in rows) - timedelta(days=0.75)
    assert all((r["split"] == "test") == (r[C.TS] >= cutoff) for r in rows)
    assert {r["split"] for r in rows} == {"train", "test"}


@pytest.mark.parametrize("config", [CONFIG.graph, TIME_GRAPH], ids=["session", "time"])
def test_graph_matches_a_python_oracle(ws: Workspace, outputs: dict, config: GraphConfig) -> None:
    kept = outputs["duckdb"]["interactions"]
    got = coengagement_graph_table(
        interactions(connect("duckdb").read_parquet(ws.events.glob()), CONFIG.interactions), config
    )
    assert got.to_pylist() == _graph_oracle(kept.to_pylist(), config)
    assert max(got["rank"].to_pylist()) == config.top_n


def _graph_oracle(rows: list[dict], cfg: GraphConfig) -> list[dict]:
    """The graph's definition, pair by pair in plain Python."""
    ref = datetime_us(cfg.reference_time) if cfg.reference_time else None
    ref = ref or max(datetime_us(r[C.TS]) for r in rows)
    gap, window = round(cfg.session_gap_minutes * 6e7), round(cfg.window_minutes * 6e7)
    by_user: dict[str, list[tuple]] = {}
    for r in rows:
        if (t := datetime_us(r[C.TS])) <= ref:
            by_user.setdefault(r[C.USER_ID], []).append(
                (t, r[C.EVENT_ID], r[C.ITEM_ID], r["weight"])
            )
    q: dict[tuple, int] = {}
    users: dict[tuple, set] = {}
    for u, evs in by_user.items():
        evs.sort()
        session, n = [], 0
        for k, e in enumerate(evs):
            n += k == 0 or e[0] - evs[k - 1][0] > gap
            session.append(n)
        for i, j in itertools.permutations(range(len(evs)), 2):
            (ti, _, a, wa), (tj, _, b, wb) = evs[i], evs[j]
            near = session[i] == session[j] if cfg.window == "session" else abs(ti - tj) <= window
            if near and a != b:
                decay = 0.5 ** ((ref - max(ti, tj)) / 86_400e6 / cfg.half_life_days)
                q[(a, b)] = q.get((a, b), 0) + math.floor(wa * wb * decay * 1e9 + 0.5)
                users.setdefault((a, b), set()).add(u)
    out = []
    for a in sorted({a for a, _ in q}):
        best = sorted((-v, b) for (x, b), v in q.items() if x == a)[: cfg.top_n]
        out += [
            {
                C.ITEM_ID: a,
                "rank": r,
                "neighbor_id": b,
                "score": -v / 1e9,
                "n_users": len(users[(a, b)]),
            }
            for r, (v, b) in enumerate(best, 1)
        ]
    return out


def test_an_empty_log_gives_empty_tables_with_their_schemas(tmp_path) -> None:
    out = run_pipelines(Workspace(tmp_path / "ws").init(), "duckdb", CONFIG)
    assert set(out) == set(OUTPUTS)
    assert all(t.num_rows == 0 for t in out.values())
    assert out["sequences"].schema.field("item_ids").type == pa.list_(pa.string())


def test_popularity_is_exactly_equal_on_duckdb_and_spark(
    ws: Workspace, spark: ibis.BaseBackend
) -> None:
    from moodboard.pipelines.popularity import popularity_table
    from moodboard.retrieve.popular import ACTION_WEIGHTS

    duck, spk = (
        popularity_table(con, ws.events.glob(), ACTION_WEIGHTS, 7.0)
        for con in (connect("duckdb"), spark)
    )
    assert duck.num_rows > 0 and max(duck.column("score").to_pylist()) > 0
    assert duck.equals(spk), _first_difference(duck, spk)
    bots = ibis.memtable({C.USER_ID: ["bot-fast", "bot-slow"]})  # as the build leaves bots out
    duck_h, spk_h = (
        popularity_table(con, ws.events.glob(), ACTION_WEIGHTS, 7.0, exclude_users=bots)
        for con in (connect("duckdb"), spark)
    )
    assert duck_h.equals(spk_h), _first_difference(duck_h, spk_h)
    assert not duck_h.equals(duck)  # the bots' clicks counted before


@pytest.mark.parametrize(("window", "as_of"), [(30.0, None), (7.5, AS_OF)], ids=["all", "as_of"])
def test_labels_match_a_python_oracle(
    ws: Workspace, log: pa.Table, outputs: dict, window: float, as_of: datetime | None
) -> None:
    events = connect("duckdb").read_parquet(ws.events.glob())
    got = labels_table(events, LabelsConfig(window_minutes=window), as_of=as_of).to_pylist()
    want = _labels_oracle(log.to_pylist(), window, as_of)
    assert [(r[C.REQUEST_ID], r[C.ITEM_ID], r["label"], r[C.QUERY]) for r in got] == want
    assert len({r["label"] for r in got}) == 6  # every grade occurs
    if as_of is None:  # run_pipelines labels the same impressions (no bot saw a page)
        assert outputs["duckdb"]["labels"].to_pylist() == got


def _labels_oracle(rows: list[dict], window: float, as_of: datetime | None) -> list[tuple]:
    """Impression labels by their definition (pipelines/labels.py), row by row."""
    grades = {"click": 2, "save": 3, "add_to_cart": 4, "purchase": 5}
    rows = sorted(
        (r for r in rows if r[C.REQUEST_ID] and (as_of is None or r[C.TS] <= as_of)),
        key=lambda r: (r[C.TS], r[C.EVENT_ID]),
    )
    searched: dict[str, str] = {}
    for r in rows:
        if r[C.TYPE] == "search" and r[C.QUERY] is not None:
            searched.setdefault(r[C.REQUEST_ID], r[C.QUERY])
    shown: dict[tuple, dict] = {}
    for r in rows:
        key = (r[C.REQUEST_ID], r[C.ITEM_ID])
        late = as_of is not None and r[C.TS] + timedelta(minutes=window) > as_of
        if r[C.TYPE] == "impression" and r[C.ITEM_ID] and not late:
            shown.setdefault(key, r)
    out = []
    for key, imp in sorted(shown.items()):
        acts = [
            r[C.TYPE]
            for r in rows
            if (r[C.REQUEST_ID], r[C.ITEM_ID]) == key
            and imp[C.TS] <= r[C.TS] <= imp[C.TS] + timedelta(minutes=window)
        ]
        best = max((grades.get(a, 0) for a in acts), default=0)
        label = best if best >= 3 else 0 if "hide" in acts else best or 1
        out.append((*key, label, imp[C.QUERY] or searched.get(key[0])))
    return out


def test_ranker_rows_are_exactly_equal_on_duckdb_and_spark(
    ws: Workspace, spark: ibis.BaseBackend
) -> None:
    from moodboard.build.rank_rows import ranker_rows
    from moodboard.pipelines.interactions import actions, removed_users
    from moodboard.rank.signals import HISTORY_ITEMS, Signals, SignalsConfig

    signals = Signals.default(SignalsConfig(history_length=6))
    tables = []
    for con in (connect("duckdb"), spark):
        events = con.read_parquet(ws.events.glob())
        bots = removed_users(actions(events, CONFIG.interactions), CONFIG.interactions)
        tables.append(ranker_rows(events, signals=signals, exclude_users=bots).rows)
    duck, spk = tables
    assert duck.num_rows > 500 and {"score:bm25", "score:retrieval"} <= set(duck.column_names)
    lengths = {len(h) for h in duck.column(HISTORY_ITEMS).to_pylist()}
    assert {0, 6} <= lengths  # cold users and full histories (ties on ts included)
    assert duck.schema.equals(spk.schema)
    assert duck.equals(spk), _first_difference(duck, spk)
    with_bots = ranker_rows(connect("duckdb").read_parquet(ws.events.glob()), signals=signals)
    inflated = pc.greater(with_bots.rows["item_n_positive"], duck["item_n_positive"])
    assert pc.any(inflated).as_py()  # the bots' clicks count only when they are not excluded


def test_long_term_labels_are_exactly_equal_on_duckdb_and_spark(
    ws: Workspace, spark: ibis.BaseBackend
) -> None:
    from moodboard.pipelines.ltv import FUTURE_VALUE, future_value_table

    weights = {"click": 1.0, "purchase": 3.0}
    tables = [
        future_value_table(con.read_parquet(ws.events.glob()), 1, weights)
        for con in (connect("duckdb"), spark)
    ]
    duck, spk = tables
    assert duck.num_rows > 10 and pc.max(duck[FUTURE_VALUE]).as_py() > 0
    assert duck.schema.equals(spk.schema)
    assert duck.equals(spk), _first_difference(duck, spk)


def test_experiment_metrics_are_equal_on_duckdb_and_spark(
    spark: ibis.BaseBackend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An experiment's exposures and per-shopper-day counts (Ibis) read the same on both."""
    from experiment_log import END, experiment_workspace
    from experiment_log import spec as experiment_spec
    from moodboard.config import Settings
    from moodboard.experiment.data import load_data

    exp_ws, truth = experiment_workspace(tmp_path_factory.mktemp("exp") / "ws", users=120)
    spec, settings = experiment_spec(), Settings()
    duck = load_data(exp_ws, spec, settings, as_of=END, engine="duckdb")
    spk = load_data(exp_ws, spec, settings, as_of=END, engine="spark")
    assert list(duck.users) == list(spk.users) == sorted(truth.users)
    assert list(duck.arms) == list(spk.arms)
    assert list(duck.exposed_day) == list(spk.exposed_day)
    assert list(duck.category) == list(spk.category)
    assert list(duck.device) == list(spk.device) and set(duck.device) == {"phone", "desktop"}
    assert list(duck.returning) == list(spk.returning) and 0 < duck.returning.mean() < 1
    for frame in ("post", "pre"):
        a = getattr(duck, frame).sort_values(["user_id", "day"]).reset_index(drop=True)
        b = getattr(spk, frame).sort_values(["user_id", "day"]).reset_index(drop=True)
        assert len(a) > 0 and a.equals(b), frame
