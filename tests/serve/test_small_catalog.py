"""A 35-product catalog file with relative image paths and an id holding a slash: it builds with
events, every id is reachable, and ``/images`` sends only confined JPEG/PNG/WebP files."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serving import api_client, serve_settings

from moodboard.build import build
from moodboard.config import SimulateSettings
from moodboard.datasets import load_fashion
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.serve.registry import Engine
from moodboard.simulate import run_simulation

SLASHED = "a/b 1?x#y"


@pytest.fixture(scope="module")
def small_ws(datasets_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """35 shirts, jeans and heels, images copied next to the catalog (one as PNG), 20
    simulated shoppers, one build."""
    t = load_fashion().products
    kinds = t.column("articleType").to_pylist()
    keep = [i for i, a in enumerate(kinds) if a in ("Shirts", "Jeans", "Heels")][:35]
    rows = t.take(keep).to_pylist()
    folder = tmp_path_factory.mktemp("small") / "catalog"
    (folder / "img").mkdir(parents=True)
    for r in rows:
        src = Path(r["image"])
        shutil.copy(src, folder / "img" / src.name)
        r["image"] = f"img/{src.name}"
    Image.open(folder / rows[1]["image"]).save(folder / "img" / "one.png")
    rows[1]["image"] = "img/one.png"
    rows[0]["id"] = SLASHED
    pcsv.write_csv(pa.Table.from_pylist(rows), folder / "catalog.csv")
    ws = Workspace(folder.parent / "ws")
    assert ingest_catalog(ws, folder / "catalog.csv").quarantined == 0
    run_simulation(ws, SimulateSettings(users=20, days=1))
    build(ws)  # user_interests' dim=256 >= 35 items failed the whole build
    return ws


@pytest.fixture(scope="module")
def client(small_ws: Workspace) -> Iterator[TestClient]:
    with api_client(small_ws.root) as c:
        yield c


def test_a_35_product_catalog_with_events_builds_every_recommender(small_ws: Workspace) -> None:
    manifest = (small_ws.artifacts_dir / small_ws.current_artifact() / "manifest.json").read_text()
    for name in ("two_tower", "sequence", "graph/walks", "user_interests"):
        assert f'"{name}"' in manifest, name


def test_ids_with_a_slash_are_reachable_and_their_urls_encoded(client: TestClient) -> None:
    path = quote(SLASHED, safe="")
    product = client.get(f"/products/{path}")
    assert product.status_code == 200, product.text
    assert product.json()["id"] == SLASHED
    assert product.json()["image_url"] == f"/images/{path}"
    assert client.get(product.json()["image_url"]).status_code == 200
    related = client.get(f"/related/{path}", params={"k": 5})
    assert related.status_code == 200 and related.json()["item_id"] == SLASHED
    assert client.get(f"/p/{path}").status_code == 200
    cards = client.get("/popular", params={"k": 35}).json()["items"]
    assert [c["image_url"] for c in cards if c["id"] == SLASHED] == [f"/images/{path}"]


def test_images_are_sent_typed_by_content_with_nosniff(client: TestClient) -> None:
    cards = {c["id"]: c for c in client.get("/popular", params={"k": 35}).json()["items"]}
    r = client.get(cards[SLASHED]["image_url"])
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    types = {client.get(c["image_url"]).headers["content-type"] for c in cards.values()}
    assert types == {"image/jpeg", "image/png"}


def _image_of(client: TestClient, ws: Workspace, n: int) -> tuple[str, Path]:
    engine = client.app.state.live.engine
    return engine.catalog.ids.external([n])[0], Path(engine.catalog.image[n])


def test_an_image_swapped_for_a_symlink_or_a_text_file_is_not_served(
    client: TestClient, small_ws: Workspace, tmp_path: Path
) -> None:
    item, path = _image_of(client, small_ws, 5)
    url = f"/images/{quote(item, safe='')}"
    saved = tmp_path / "saved"
    shutil.copy(path, saved)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT\n")
    try:
        path.unlink()
        os.symlink(secret, path)  # a symlink out of the catalog folder
        r = client.get(url)
        assert r.status_code == 404 and "TOP-SECRET" not in r.text
        path.unlink()
        shutil.copy(secret, path)  # a text file inside the folder, named .jpg
        r = client.get(url)
        assert r.status_code == 404 and "TOP-SECRET" not in r.text
    finally:
        path.unlink(missing_ok=True)
        shutil.copy(saved, path)
    assert client.get(url).status_code == 200


def test_an_undecodable_image_is_skipped_at_build_with_a_warning(
    client: TestClient, small_ws: Workspace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, path = _image_of(client, small_ws, 7)
    saved = tmp_path / "saved"
    shutil.copy(path, saved)
    path.write_bytes(b"\xff\xd8\xff\xe0TOP-SECRET-BYTES" + b"\x00" * 64)  # a broken JPEG
    try:
        with caplog.at_level(logging.WARNING):
            manifest = build(small_ws)
    finally:
        shutil.copy(saved, path)
    assert manifest["version"]
    assert any(path.name in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "TOP-SECRET" not in caplog.text


def test_too_few_search_sessions_serve_search_unranked_and_the_manifest_says_why(
    small_ws: Workspace, client: TestClient
) -> None:
    manifest = json.loads(
        (small_ws.artifacts_dir / small_ws.current_artifact() / "manifest.json").read_text()
    )
    entry = manifest["components"]["rank/lambdamart"]
    assert not entry["trained"] and entry["path"] is None and entry["component"] == "rank/noop"
    assert "rank.lambdamart.min_queries = 50" in entry["reason"]
    page = client.get("/search", params={"q": "blue shirts", "explain": 1}).json()
    ranks = [s["component"] for s in page["explain"]["stages"] if s["name"] == "rank"]
    assert ranks == ["rank/noop"] and page["items"]


def test_too_few_labelled_impressions_train_no_multihead_ranker_and_say_why(
    small_ws: Workspace,
) -> None:
    manifest = json.loads(
        (small_ws.artifacts_dir / small_ws.current_artifact() / "manifest.json").read_text()
    )
    entry = manifest["components"]["rank/multihead"]
    assert not entry["trained"] and entry["path"] is None and entry["component"] == "rank/noop"
    assert "rank.multihead.min_rows" in entry["reason"] or "no impressions" in entry["reason"]
    settings = serve_settings()
    feed = settings.surfaces.feed.model_copy(update={"ranker": "rank/multihead"})
    settings.surfaces = settings.surfaces.model_copy(update={"feed": feed})
    engine = Engine.load(small_ws, settings=settings)  # declared, none trained: rank/noop
    assert engine.surfaces["feed"].rank.name == "rank/noop"
