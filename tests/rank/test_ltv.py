"""``rank/ltv``, the value model, on the mini engine's logs: it trains on the days after each
page (skipped with a reason when the logs are shorter than its horizon), saves and loads
equal, and a version that holds it serves an ``ltv`` column on the feed's candidates, which
the composed page's utility weighs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mini import copy_workspace, mini_settings
from moodboard.build.context import BuildContext
from moodboard.build.layout import MANIFEST_FILE
from moodboard.build.ltv import LtvStep, labelled_rows
from moodboard.build.multihead import RANKER_ROWS
from moodboard.build.rank_rows import ranker_rows
from moodboard.config.overrides import apply_overrides
from moodboard.data import Request
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.pipelines.ltv import DAY, FUTURE_VALUE
from moodboard.rank import LTV_COLUMN, MULTIHEAD, LtvConfig, LtvModel, Signals
from moodboard.rank.signals import TS_US
from moodboard.serve.registry import Engine
from moodboard.surfaces import build_surface

FAST = LtvConfig(horizon_days=2, min_rows=100, n_estimators=30)
FEED = {
    "surfaces.feed.ranker": MULTIHEAD,
    "surfaces.feed.blend": "blend/compose",
    "surfaces.feed.compose.diversity.method": "none",
    "surfaces.feed.compose.fresh.policy": "none",
    "surfaces.feed.compose.slot_rules.rules": [],
    "surfaces.feed.compose.utility.weights": {"p_click": 1.0, LTV_COLUMN: 0.5},
}


@pytest.fixture(scope="module")
def served(mini_engine: Workspace, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A copy of the mini engine whose live version also holds a value model of a 2-day
    horizon (its logs span 5 days), with its manifest entry."""
    ws = copy_workspace(mini_engine, tmp_path_factory.mktemp("ltv") / "ws")
    settings = mini_settings()
    ctx = BuildContext(ws, ws.products_table(), settings)
    ctx.shared[RANKER_ROWS] = ranker_rows(
        ctx.events(), settings.rank.labels, Signals.default(settings.rank.signals)
    )
    version = ws.version_path(ws.current_artifact())
    built = LtvStep(FAST)(ctx, version)
    manifest = json.loads((version / MANIFEST_FILE).read_text())
    manifest["components"] |= built.components
    (version / MANIFEST_FILE).write_text(json.dumps(manifest))
    return ws, ctx, version, built.components["rank/ltv"]


def test_the_value_model_trains_on_the_days_after_each_page(served: tuple) -> None:
    _, _, version, entry = served
    assert entry["trained"] and entry["rows"] >= FAST.min_rows
    assert entry["path"] == "rank_ltv"
    assert {"valid_r2", "valid_spearman", "valid_rows"} <= set(entry)
    assert np.isfinite(entry["valid_r2"]) and entry["valid_rows"] > 0
    assert (version / "rank_ltv" / "model.txt").is_file()


def test_logs_shorter_than_the_horizon_skip_it_with_a_reason(served: tuple) -> None:
    _, ctx, _, _ = served
    entry = LtvStep(LtvConfig(horizon_days=30))(ctx, Path("/nonexistent")).components["rank/ltv"]
    assert entry["trained"] is False and entry["path"] is None
    assert "too short" in entry["reason"]


def test_saved_and_loaded_models_predict_alike(served: tuple, tmp_path: Path) -> None:
    _, _, version, _ = served
    model = LtvModel.load(version / "rank_ltv")
    rng = np.random.default_rng(0)
    x = rng.random((50, len(model.feature_names))).astype(np.float32) * 5
    model.save(tmp_path / "again")
    again = LtvModel.load(tmp_path / "again")
    assert again.config == FAST and again.report == model.report
    assert np.array_equal(again.predict(x), model.predict(x))
    fresh = LtvModel(FAST, model.count_names).fit(x, x[:, 0] * 2.0)
    fresh.save(tmp_path / "fresh")
    assert np.array_equal(LtvModel.load(tmp_path / "fresh").predict(x), fresh.predict(x))


def test_the_feed_serves_ltv_and_the_utility_weighs_it(served: tuple) -> None:
    ws, _, _, _ = served
    settings = apply_overrides(mini_settings(), FEED)
    engine = Engine.load(ws, settings=settings)
    user = next(u for u in engine.histories.users() if len(engine.history(u)) >= 3)
    req = Request(surface="feed", user_id=user, k=24, session="s0")
    prepared, fused = engine.feed.rank_input(req)
    ranked = engine.feed.rank(fused, prepared.rank)
    ltv = ranked.score(LTV_COLUMN)
    scored = np.isfinite(ranked.score("p_click"))
    assert np.isfinite(ltv[scored]).all() and np.ptp(ltv[scored]) > 0
    page = engine.feed.run(req).candidates.head(24)
    want = page.score("p_click") + 0.5 * page.score(LTV_COLUMN)
    assert np.allclose(page.score("utility"), want)
    assert np.all(np.diff(page.score("utility")) <= 1e-12)
    # a chain that weighs ltv without a value model is refused when it is built
    env = engine.feed.env
    resources = dict(env.resources)
    resources[MULTIHEAD] = type(resources[MULTIHEAD])(
        resources[MULTIHEAD].ranker, resources[MULTIHEAD].inputs
    )
    with pytest.raises(ConfigError, match="rank/ltv"):
        build_surface("feed", engine.feed.config, engine.catalog, engine.sources, 0, resources)


def test_each_row_takes_the_label_of_its_user_and_day() -> None:
    day = 86_400_000_000
    rows = pa.table(
        {
            C.USER_ID: ["u1", "u2", "u1", "u1"],
            TS_US: [5 * day + 10, 5 * day + 20, 6 * day + 1, 7 * day + 2],
            C.ITEM_ID: ["a", "b", "c", "d"],
        }
    )
    labels = pa.table(
        {C.USER_ID: ["u1", "u1", "u2"], DAY: [5, 6, 9], FUTURE_VALUE: [4.0, 1.0, 7.0]}
    )
    got = labelled_rows(rows, labels)
    # u2 has no label on day 5 and u1 none on day 7 (censored): left out; oldest first
    assert got.column(C.ITEM_ID).to_pylist() == ["a", "c"]
    assert got.column(FUTURE_VALUE).to_pylist() == [4.0, 1.0]
