"""One small built workspace on the real fashion catalog, shared by the surface tests.

400-odd products of ten article types (40 each, plus every product whose image file is
byte-identical to another's: real near-duplicates), 60 simulated shoppers, and planted
co-engagement: sessions where men click a shirt and then jeans, and women a dress and then a
handbag, so the build learns those pairs as complementary categories.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from moodboard.build import build
from moodboard.config import SimulateSettings
from moodboard.datasets import load_fashion
from moodboard.ingest import Workspace, ingest_catalog, ingest_events
from moodboard.retrieve import TrainingData
from moodboard.retrieve.walks import GraphWalks
from moodboard.serve.registry import Engine
from moodboard.simulate import run_simulation

TYPES = (
    "Shirts",
    "Tshirts",
    "Jeans",
    "Trousers",
    "Casual Shoes",
    "Handbags",
    "Watches",
    "Dresses",
    "Tops",
    "Heels",
)
PER_TYPE = 40
PLANTED = 40  # sessions per planted pair


def _duplicates(rows: list[int], images: list[str | None]) -> list[list[int]]:
    """Groups of rows whose image files have the same bytes."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if images[r]:
            by_hash[hashlib.sha1(Path(images[r]).read_bytes()).hexdigest()].append(r)
    return [g for g in by_hash.values() if len(g) > 1]


def _planted_events(products: pa.Table) -> pa.Table:
    """Sessions of two clicks: a men's shirt then men's jeans, a women's dress then a handbag."""
    at = products.column("articleType").to_pylist()
    gender = products.column("gender").to_pylist()
    ids = products.column("id").to_pylist()

    def pick(article: str, who: str) -> list[str]:
        return [i for i, a, g in zip(ids, at, gender, strict=True) if a == article and g == who]

    rng = np.random.default_rng(7)
    rows: dict[str, list[str]] = defaultdict(list)
    start = datetime(2026, 1, 8, 9, tzinfo=UTC)
    n = 0
    for pair, who in ((("Shirts", "Jeans"), "Men"), (("Dresses", "Handbags"), "Women")):
        first, second = pick(pair[0], who), pick(pair[1], who)
        assert first and second, pair
        for s in range(PLANTED):
            t = start + timedelta(hours=s)
            for j, item in enumerate((rng.choice(first), rng.choice(second))):
                n += 1
                rows["event_id"].append(f"plant-{n}")
                rows["ts"].append((t + timedelta(minutes=j)).isoformat())
                rows["user_id"].append(f"plant-{pair[0]}-{s}")
                rows["type"].append("click")
                rows["item_id"].append(str(item))
                rows["surface"].append("related")
    return pa.table(rows)


@pytest.fixture(scope="session")
def surfaces_ws(datasets_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The workspace, built once for every surface test."""
    t = load_fashion().products
    types = t.column("articleType").to_pylist()
    images = t.column("image").to_pylist()
    rows_of = {a: [i for i, x in enumerate(types) if x == a] for a in TYPES}
    keep = sorted({r for a in TYPES for r in rows_of[a][:PER_TYPE]})
    dups = _duplicates([r for a in TYPES for r in rows_of[a]], images)
    keep = sorted(set(keep) | {r for g in dups[:12] for r in g})
    products = t.take(keep)
    ws = Workspace(tmp_path_factory.mktemp("surfaces") / "ws")
    assert ingest_catalog(ws, [products]).quarantined == 0
    run_simulation(ws, SimulateSettings(users=60, days=2))
    assert ingest_events(ws, [_planted_events(products)]).quarantined == 0
    build(ws)
    return ws


@pytest.fixture(scope="session")
def engine(surfaces_ws: Workspace) -> Engine:
    """The built engine with the default settings."""
    from moodboard.config import Settings

    return Engine.load(surfaces_ws, settings=Settings())


@pytest.fixture(scope="session")
def article(engine: Engine) -> np.ndarray:
    """Each item's article type."""
    return engine.catalog.attribute("articleType")


@pytest.fixture(scope="session")
def image_vectors(engine: Engine) -> np.ndarray:
    """Each item's image embedding (unit rows)."""
    return engine.sources["visual/image"].vectors


@pytest.fixture(scope="session")
def paired_walks(engine: Engine, article: np.ndarray) -> tuple[GraphWalks, dict[int, int]]:
    """graph/walks on sessions that always pair a watch with one particular pair of heels."""
    watches = np.flatnonzero(article == "Watches")[:10]
    heels = np.flatnonzero(article == "Heels")[:10]
    pairs = dict(zip(watches.tolist(), heels.tolist(), strict=True))
    seqs = [np.array([w, h]) for w, h in pairs.items() for _ in range(5)]
    return GraphWalks().fit(TrainingData(len(engine.catalog), seqs)), pairs


@pytest.fixture(scope="session")
def text_vectors(engine: Engine) -> np.ndarray:
    """Each item's text embedding (unit rows)."""
    return engine.sources["dense/text"].vectors


@pytest.fixture(scope="session")
def content_sources(engine: Engine) -> dict:
    """The engine's sources without the learned full-ranking ones (content and popularity)."""
    return {n: s for n, s in engine.sources.items() if not s.full_ranking}
