"""Shoppers through the engine: the engine's pages, logged as the server logs them, on the
simulated clock; the same seed gives the same logs; arms compared on the same shoppers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mini import mini_settings
from moodboard.cli import app
from moodboard.config import Settings
from moodboard.config.overrides import apply_overrides
from moodboard.data import Candidates
from moodboard.ingest import Workspace
from moodboard.rank import RankQuery
from moodboard.rank.registry import RANKERS
from moodboard.serve.registry import Engine
from moodboard.simulate import PageAsk, ShownPage, Simulator, World
from moodboard.simulate.engine import EnginePages, first_day, serving_threads
from moodboard.surfaces.recent import RecentActions

MIX = {"search": 0.4, "feed": 0.3, "related": 0.15, "board": 0.15}
PROBE = "rank/test-clock-probe"


class ClockProbe:
    """A rank stage that keeps the order it is given and notes the time each request carries
    (a registered plugin, as any ranker is)."""

    name = PROBE
    seen: ClassVar[dict[str, int | None]] = {}

    def __init__(self, seed: int = 0, resources: Mapping[str, Any] | None = None) -> None:
        pass

    def __call__(self, cand: Candidates, query: RankQuery) -> Candidates:
        ClockProbe.seen[query.request_id] = query.ts_us
        return cand


class Recorder:
    """The engine's page source, keeping each ask and what it showed."""

    def __init__(self, pages: EnginePages) -> None:
        self.pages = pages
        self.shown: list[tuple[PageAsk, ShownPage]] = []

    def __call__(self, ask: PageAsk) -> ShownPage:
        shown = self.pages(ask)
        self.shown.append((ask, shown))
        return shown


def _settings(users: int = 40) -> Settings:
    s = mini_settings()
    s.simulate = s.simulate.model_copy(
        update={"users": users, "days": 1, "sessions_per_day": 2.0, "surface_mix": MIX}
    )
    # the board's and the feed's rank stage (rank/noop by default) note the request's time
    return apply_overrides(s, {"surfaces.feed.ranker": PROBE, "surfaces.board.ranker": PROBE})


def _run(ws: Workspace, settings: Settings) -> tuple[list[pa.Table], Recorder, Engine]:
    recent = RecentActions()
    engine = Engine.load(ws, settings=settings, resources={"recent": recent})
    sim = Simulator(World.from_products(ws.products_table()), settings.simulate)
    sim.board_items = {b.id: list(b.item_ids) for b in ws.boards()}
    sim.pages = pages = Recorder(EnginePages(engine, sim.world))
    day = first_day(ws, settings.simulate.start)
    with serving_threads(settings.serve.torch_threads):
        tables = list(sim.day_tables(range(day, day + 1), "t", on_actions=recent.add))
    return tables, pages, engine


@pytest.fixture(scope="module")
def run(mini_engine: Workspace) -> tuple[list[pa.Table], Recorder, Engine, dict]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RANKERS, PROBE, ClockProbe)
        ClockProbe.seen.clear()
        tables, pages, engine = _run(mini_engine, _settings())
        yield tables, pages, engine, dict(ClockProbe.seen)


def mini_engine_events(ws: Workspace) -> list[pa.Table]:
    return [pq.read_table(f) for f in ws.events.files()]


def _impressions(tables: list[pa.Table]) -> dict[str, list[dict]]:
    by_request: dict[str, list[dict]] = {}
    for t in tables:
        for r in t.to_pylist():
            if r["type"] == "impression":
                by_request.setdefault(r["request_id"], []).append(r)
    return by_request


def test_shoppers_see_the_engines_pages_logged_as_the_server_logs_them(run) -> None:
    tables, pages, engine, _ = run
    logged = _impressions(tables)
    assert {ask.surface for ask, _ in pages.shown} == set(MIX)
    assert len(pages.shown) > 100
    ids = pages.pages.world.item_ids
    changed = 0
    for ask, shown in pages.shown:
        req = pages.pages.request(ask)
        # the same request again (the real-time buffer now holds the whole day, and a page
        # reads only what happened before its time) gives the same page
        cand = engine.surfaces[ask.surface].run(req).candidates
        again = engine.catalog.ids.external(cand.items[ask.cursor : ask.cursor + ask.k].tolist())
        assert [ids[i] for i in shown.items] == again, ask.request_id
        rows = logged[ask.request_id]
        assert [r["item_id"] for r in sorted(rows, key=lambda r: r["position"])] == again
        assert [r["position"] for r in rows] == list(
            range(ask.cursor + 1, ask.cursor + 1 + len(rows))
        )
        assert all(r["propensity"] == 1.0 and r["surface"] == ask.surface for r in rows)
        assert all(r["ts"].replace(tzinfo=UTC) == ask.ts for r in rows)
        assert all("sources" in json.loads(r["props"]) for r in rows)
        if ask.surface == "feed":  # the same page asked at the end of the day
            late = req.model_copy(update={"ts": ask.ts.replace(hour=23, minute=59)})
            cand = engine.surfaces["feed"].run(late).candidates
            shown_idx = engine.catalog.ids.indices([ids[i] for i in shown.items]).tolist()
            changed += cand.items[ask.cursor : ask.cursor + ask.k].tolist() != shown_idx
    assert changed > 0  # later actions would have changed some pages: the clock is read
    actions = [r for t in tables for r in t.to_pylist() if r["type"] in ("click", "save")]
    assert actions and all(r["request_id"] in logged for r in actions)


def test_the_engine_reads_the_simulated_clock(run, mini_engine: Workspace) -> None:
    tables, pages, _, seen = run
    probed = [(ask, seen[ask.request_id]) for ask, _ in pages.shown
              if ask.surface in ("feed", "board")]  # fmt: skip
    assert len(probed) > 20
    assert all(seen == round(ask.ts.timestamp() * 1_000_000) for ask, seen in probed)
    now = datetime.now(UTC)
    assert all(ask.ts < now - timedelta(days=30) for ask, _ in probed)  # simulated, not now
    # the run's day starts after the workspace's newest event
    day = first_day(mini_engine, _settings().simulate.start)
    start = datetime.fromisoformat(_settings().simulate.start) + timedelta(days=day)
    newest = max(max(t.column("ts").to_pylist()) for t in mini_engine_events(mini_engine))
    assert newest < start <= min(min(t.column("ts").to_pylist()) for t in tables)


def test_same_seed_same_logs_through_the_engine(run, mini_engine: Workspace) -> None:
    tables, _, _, _ = run
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RANKERS, PROBE, ClockProbe)
        again, _, _ = _run(mini_engine, _settings(users=10))
    # each shopper's day depends on the seed alone: a run of the first 10 shoppers logs what
    # the run of 40 logged for them
    first = {f"sim-u{n:06d}" for n in range(10)}
    rows = [_timeless(r) for t in tables for r in t.to_pylist() if r["user_id"] in first]
    assert rows and [_timeless(r) for t in again for r in t.to_pylist()] == rows


def _timeless(row: dict) -> dict:
    """``row`` without the page's measured ``latency_ms`` (a wall-clock time, not a draw)."""
    if row.get("props"):
        props = json.loads(row["props"])
        assert props.pop("latency_ms", 0) >= 0
        row = row | {"props": json.dumps(props)}
    return row


def test_arms_share_their_shoppers_and_a_worse_arm_shows(
    mini_engine: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODBOARD_SIMULATE__SESSIONS_PER_DAY", "2")
    monkeypatch.setenv("MOODBOARD_SIMULATE__SURFACE_MIX", '{"feed": 1.0}')
    shuffled = "surfaces.feed.ranker=rank/shuffle;surfaces.feed.per_source=1000"
    args = ["simulate", "-w", str(mini_engine.root), "--through-engine", "--users", "60"]
    args += ["--days", "1", "--seed", "0", "--arms-dir", str(tmp_path / "arms"), "--json"]
    args += ["--arm", f"shuffled={shuffled}", "--arm", "same=", "--arm", "control="]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    metrics = {"purchases_per_user", "clicks_per_user", "saves_per_user"}
    metrics |= {"week2_purchases_per_user", "active_days_per_user", "day1_clicks_per_user"}
    assert set(out["arms"]) == {"shuffled", "same", "control"}
    assert all(set(m) == metrics for m in out["arms"].values())
    # the first arm minus the last (the control), with its 95% interval
    assert out["diff"] == out["diffs"]["shuffled - control"] and set(out["diff"]) == metrics
    # identical arms: the same shoppers, plans and draws give every shopper the same counts
    for d in out["diffs"]["same - control"].values():
        assert d == {"estimate": 0.0, "ci": [0.0, 0.0]}
    assert out["arms"]["same"] == out["arms"]["control"]
    # one day: a shopper with a page shown was active on it, none twice; no second week
    assert 0.5 < out["arms"]["control"]["active_days_per_user"] <= 1.0
    assert out["arms"]["control"]["week2_purchases_per_user"] == 0.0
    # one day: its clicks are all the clicks
    assert (
        out["arms"]["control"]["day1_clicks_per_user"] == out["arms"]["control"]["clicks_per_user"]
    )
    clicks = out["diff"]["clicks_per_user"]
    assert clicks["estimate"] < 0 and clicks["ci"][1] < 0, clicks
    # each arm shopped in its own copy; the shared workspace kept its events
    for arm in ("shuffled", "same", "control"):
        assert (
            Workspace(tmp_path / "arms" / arm).status()["events_total"]
            > (mini_engine.status()["events_total"])
        )
