"""`moodboard build` makes a complete artifact live, or nothing at all."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mini import mini_products, mini_settings, rebuild_settings
from moodboard.build import build
from moodboard.data import Request
from moodboard.errors import InputError
from moodboard.ingest import Workspace
from moodboard.ingest.workspace import VERSION_FORMAT
from moodboard.serve.registry import Engine


@pytest.fixture(scope="module")
def engine(mini_engine: Workspace) -> Engine:
    return Engine.load(mini_engine)


def test_artifact_has_every_component_and_a_manifest(
    mini_engine: Workspace, engine: Engine
) -> None:
    assert mini_engine.current_artifact() == engine.version
    path = mini_engine.artifacts_dir / engine.version
    for part in (
        "lexical",
        "dense_text",
        "visual_image",
        "popular",
        "understand",
        "products.parquet",
    ):
        assert (path / part).exists(), part
    manifest = json.loads((path / "manifest.json").read_text())
    n = len(engine.catalog)
    assert manifest["data"]["products"] == n == len(mini_products())
    assert manifest["data"]["events_total"] > 0
    assert manifest["components"]["visual/image"]["images"] == n
    assert manifest["components"]["popular/trending"]["items_with_engagement"] > 0
    assert set(manifest["timings_s"]) >= {"lexical", "dense_text", "visual_image", "understand"}
    assert not list(mini_engine.artifacts_dir.glob(".building-*"))


def test_search_understands_attributes_and_price(engine: Engine) -> None:
    res = engine.search.run(Request(surface="search", query="navy blue shirt for men", k=10))
    parsed = res.prepared.context["parsed"]
    assert parsed.genders == ("men",) and "navy blue" in parsed.colours
    top = [engine.catalog.attribute("articleType")[i] for i in res.candidates.items[:10]]
    assert top.count("Shirts") >= 8
    colours = [engine.catalog.attribute("baseColour")[i] for i in res.candidates.items[:5]]
    assert colours.count("Navy Blue") >= 3
    assert set(res.timings_ms) >= {"understand", "lexical/bm25", "dense/text", "total"}


def test_typos_are_corrected_before_retrieval(engine: Engine) -> None:
    res = engine.search.run(Request(surface="search", query="jeens", k=10))
    assert res.prepared.context["parsed"].corrections.get("jeens") == "jeans"
    top = [engine.catalog.attribute("articleType")[i] for i in res.candidates.items[:10]]
    assert top.count("Jeans") >= 8


def test_a_failed_build_changes_nothing(
    ws_copy: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moodboard.build import steps as build_module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(build_module.QueryUnderstanding, "fit", boom)
    before = ws_copy.current_artifact()
    with pytest.raises(RuntimeError, match="disk full"):
        build(ws_copy, settings=mini_settings())
    assert ws_copy.current_artifact() == before
    assert not list(ws_copy.artifacts_dir.glob(".building-*"))


def test_a_build_is_on_disk_before_current_names_it_and_old_versions_are_pruned(
    ws_copy: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, live = ws_copy, ws_copy.current_artifact()
    older = [(datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=d)).strftime(VERSION_FORMAT)
             for d in range(3)]  # fmt: skip
    for v in older:  # what earlier builds left
        (ws.artifacts_dir / v).mkdir()
        (ws.artifacts_dir / v / "manifest.json").write_text("{}")
    current_when_synced: dict[Path, str | None] = {}
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        current_when_synced.setdefault(path, ws.current_artifact())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    settings = rebuild_settings()
    settings.build.keep_versions = 2
    version = build(ws, settings=settings)["version"]
    artifacts = ws.artifacts_dir.resolve()
    final, building = artifacts / version, artifacts / f".building-{version}"
    files = [p for p in final.rglob("*") if p.is_file()]
    assert len(files) > 10
    for p in [*files, final]:  # fsynced (under the build's name) while CURRENT named the old one
        assert current_when_synced.get(building / p.relative_to(final)) == live, p
    assert current_when_synced[artifacts] == live  # the rename, too
    assert ws.current_artifact() == version
    kept = sorted(p.name for p in ws.artifacts_dir.iterdir())
    assert kept == [live, version]  # the newest two; the three older ones are gone


def test_the_registry_loads_what_the_manifest_lists_from_the_paths_it_gives(
    engine: Engine, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    copy = ws.version_path(engine.version)
    shutil.copytree(engine.path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "moved").mkdir()
    (copy / "dense_text").rename(copy / "moved" / "dense")  # a version laid out differently
    manifest["components"]["dense/text"]["path"] = "moved/dense"
    del manifest["components"]["graph/walks"]  # its folder stays on disk, unlisted
    (copy / "manifest.json").write_text(json.dumps(manifest))
    loaded = Engine.load(ws, engine.version)
    assert "dense/text" in loaded.sources and "graph/walks" not in loaded.sources
    assert set(loaded.sources) == set(engine.sources) - {"graph/walks"}
    res = loaded.search.run(Request(surface="search", query="navy blue shirt", k=5))
    assert res.timings_ms["dense/text"] >= 0
    manifest["components"]["dense/text"]["path"] = "../elsewhere"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="not in the version"):
        Engine.load(ws, engine.version)
