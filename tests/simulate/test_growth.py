"""Catalog growth in the simulator: withheld products enter the catalog on their release day
through ingestion and are never shown before; the new-product and coverage metrics equal a
hand count; growth off changes nothing."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mini import copy_workspace, mini_settings
from moodboard.config import CatalogGrowthSettings, Settings, load_settings
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.simulate import Simulator
from moodboard.simulate.engine import simulate_through_engine
from moodboard.simulate.fresh_metrics import GrowthOutcome, growth_report
from moodboard.simulate.growth import CatalogGrowth, release_days

#: The stored events of ``_randomized_run`` with growth off, as the simulator logged them
#: before catalog growth existed (computed with the code of main at 28ea34f).
DEFAULT_OFF_DIGEST = "6dbbae7b5e30210c775b6c2764fe739cdec3ed098c49872098479d1e221cdc7d"
_COLUMNS = ("event_id", "ts", "user_id", "type", "item_id", "position", "propensity")


def _settings(**growth: float) -> Settings:
    s = mini_settings()
    s.simulate = s.simulate.model_copy(
        update={
            "users": 30,
            "days": 3,
            "sessions_per_day": 2.0,
            "surface_mix": {"search": 0.5, "feed": 0.5},
            "catalog_growth": CatalogGrowthSettings(**growth),
        }
    )
    return s


def _events(ws: Workspace, since: datetime) -> list[dict]:
    rows = [r for f in ws.events.files() for r in pq.read_table(f).to_pylist()]
    rows = [{k: r.get(k) for k in _COLUMNS} for r in rows if r["ts"] >= since]
    return sorted(rows, key=lambda r: r["event_id"])


def _digest(rows: list[dict]) -> str:
    text = json.dumps(rows, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def test_release_days_spread_evenly_and_parts_start_on_them() -> None:
    cfg = CatalogGrowthSettings(held_out=0.1, release_from=1)
    days = release_days(6, 10, 4, cfg)
    assert days.tolist() == [11, 11, 12, 12, 13, 13]
    growth = CatalogGrowth(pa.table({"id": ["a"] * 6}), days, np.arange(6), datetime(2026, 1, 5))
    assert growth.parts(range(10, 14)) == [range(10, 11), range(11, 12), range(12, 13),
                                           range(13, 14)]  # fmt: skip
    assert growth.parts(range(12, 13)) == [range(12, 13)]
    with pytest.raises(Exception, match="release_from must be below"):
        release_days(3, 0, 2, CatalogGrowthSettings(held_out=0.1, release_from=2))


def test_released_products_enter_the_catalog_on_their_day_and_never_before(
    mini_engine: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = copy_workspace(mini_engine, tmp_path / "ws")
    # products no logged event names (the mini engine's shoppers saw nearly every product)
    base = ws.products_table().slice(0, 40).to_pylist()
    extra = [r | {"id": f"new-{j}", "created_at": None} for j, r in enumerate(base)]
    extra = [{k: v for k, v in r.items() if k != "attributes"} | json.loads(r["attributes"])
             for r in extra]  # fmt: skip
    ingest_catalog(ws, [pa.Table.from_pylist(extra)], check_images=False)
    before = set(ws.products_table().column("id").to_pylist())
    seen: list[tuple[range, set[str], set[str]]] = []
    day_tables = Simulator.day_tables

    def spy(self: Simulator, days: range, prefix: str, **kw):
        ids = set(ws.products_table().column("id").to_pylist())
        shown = {str(self.world.item_ids[i]) for i in np.flatnonzero(self.world.in_catalog())}
        seen.append((days, ids, shown))
        return day_tables(self, days, prefix, **kw)

    monkeypatch.setattr(Simulator, "day_tables", spy)
    settings = _settings(held_out=0.02)  # ~32 of ~1,590 asked: the 40 new ones are eligible
    run = simulate_through_engine(ws, settings, randomized_days=3)
    catalog = ws.products_table().to_pylist()
    released = {r["id"]: r["created_at"] for r in catalog if r["id"] not in seen[0][1]}
    assert len(released) == round(0.02 * len(before)) == run.growth.metrics()["new_items"]
    assert set(released) <= {r["id"] for r in extra}
    assert {r["id"] for r in catalog} == before  # all back by the end
    # one part per day here (releases on the 2nd and 3rd day); each sees the day's catalog
    assert [len(p) for p, _, _ in seen] == [1, 1, 1]
    start = run.start.replace(tzinfo=None)
    for days, ids, shown in seen:
        day = start + timedelta(days=days.start - seen[0][0].start)
        assert ids == shown
        assert {i for i, t in released.items() if t <= day} <= ids
        assert not {i for i, t in released.items() if t > day} & ids
    assert sorted(set(released.values())) == [start + timedelta(days=1), start + timedelta(days=2)]
    # no event of a product before its release; the new products were shown after it
    rows = _events(ws, start)
    early = [r for r in rows if r["item_id"] in released and r["ts"] < released[r["item_id"]]]
    assert not early
    assert sum(r["item_id"] in released and r["type"] == "impression" for r in rows) > 20


def test_growth_metrics_equal_a_hand_count() -> None:
    t = datetime(2026, 1, 5)
    h = timedelta(hours=1)
    rows = [
        ("u1", "a", "impression", t + 8 * h),  # before the window
        ("u1", "a", "click", t + 8 * h),
        ("u1", "b", "impression", t + 13 * h),
        ("u2", "n1", "impression", t + 30 * h),
        ("u2", "n1", "click", t + 36 * h),  # n1 released at t + 24 h: 0.5 days
        ("u2", "n1", "click", t + 48 * h),  # a later click
        ("bot", "n2", "click", t + 49 * h),  # a bot's: left out
        ("bot", "c", "impression", t + 50 * h),
        ("u3", "n2", "impression", t + 50 * h),
        ("u3", "n2", "click", t + 66 * h),  # n2 released at t + 48 h: 0.75 days
        ("u1", None, "search", t + 67 * h),
        ("u1", "c", "click", t + 72 * h),  # at the end: outside
    ]
    events = pa.table(
        {k: [r[j] for r in rows] for j, k in enumerate(("user_id", "item_id", "type", "ts"))}
    )
    released = {"n1": t + 24 * h, "n2": t + 48 * h, "n3": t + 48 * h}
    out = GrowthOutcome.of(
        events, ["c", "a", "b", "n1", "n2", "n3"], released, t + 12 * h, t + 72 * h, ["bot"]
    )
    m = out.metrics()
    assert m["new_items"] == 3
    assert m["new_clicked_share"] == pytest.approx(2 / 3)
    assert m["median_days_to_first_click"] == pytest.approx(0.625)
    assert m["new_days_to_first_click"] == pytest.approx((0.5 + 0.75 + 1.0) / 3)  # n3: 1 day
    assert m["coverage_impressions"] == pytest.approx(3 / 6)  # b, n1, n2
    assert m["coverage_clicks"] == pytest.approx(2 / 6)  # n1, n2
    # the paired product-level difference: with itself 0; with nothing clicked, as counted
    same = growth_report({"x": out, "y": out}, "y")["diffs"]["x - y"]
    assert all(d == {"estimate": 0.0, "ci": [0.0, 0.0]} for d in same.values())
    idle = GrowthOutcome.of(events.slice(0, 0), out.catalog, released, t, t + 72 * h)
    diff = growth_report({"x": out, "y": idle}, "y")["diffs"]["x - y"]
    assert diff["new_clicked_share"]["estimate"] == pytest.approx(2 / 3)
    # idle: every new product counted at its days to the end (2, 1, 1)
    assert diff["new_days_to_first_click"]["estimate"] == pytest.approx((-1.5 - 0.25 + 0) / 3)
    lo, hi = diff["coverage_impressions"]["ci"]
    assert lo < 0.5 < hi and not math.isnan(lo)


def test_growth_off_leaves_the_simulation_unchanged(mini_engine: Workspace, tmp_path: Path) -> None:
    ws = copy_workspace(mini_engine, tmp_path / "ws")
    run = simulate_through_engine(ws, _settings(), randomized_days=3)
    assert run.growth is None and "catalog_growth" not in run.as_dict()
    rows = _events(ws, run.start.replace(tzinfo=None))
    assert len(rows) > 1_000
    assert _digest(rows) == DEFAULT_OFF_DIGEST


def test_the_growth_comparisons_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(__file__).parents[2] / "configs" / "catalog-growth.toml"
    monkeypatch.setenv("MOODBOARD_CONFIG", str(path))
    s = load_settings()
    assert s.simulate.catalog_growth.held_out == 0.1
    assert (s.surfaces.feed.blend, s.surfaces.feed.ranker) == ("blend/compose", "rank/multihead")
    assert s.surfaces.feed.compose.fresh.policy == "thompson"  # the arm "fresh": the default
