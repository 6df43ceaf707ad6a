"""The mini engine: one small built workspace on the real fashion catalog, shared by the tests.

About 1,550 products: the first ``PER_TYPE`` of each of ``TYPES`` (every dress: the catalog has
33), plus the products of ``DUPLICATE_GROUPS`` groups whose image files are byte-identical (real
near-duplicates); ``SIMULATION`` shoppers; planted co-engagement (sessions where men click a
shirt and then jeans, and women a dress and then a handbag, so the build learns those pairs as
complementary categories); one ``moodboard build`` with ``mini_settings()`` (smaller, shorter
training of the learned recommenders than the defaults, the rest as configured).

``tests/conftest.py`` builds it once per session (``mini_engine``) and fails any test that
changes it; a test that writes takes a private copy (``copy_workspace``).
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from moodboard.build import build
from moodboard.config import (
    InterestsConfig,
    SequenceConfig,
    Settings,
    SimulateSettings,
    TwoTowerConfig,
    load_settings,
)
from moodboard.datasets import load_fashion
from moodboard.ingest import Workspace, ingest_catalog, ingest_events
from moodboard.simulate import run_simulation

TYPES = (
    "Shirts",
    "Tshirts",
    "Jeans",
    "Trousers",
    "Kurtas",
    "Tops",
    "Dresses",
    "Sweaters",
    "Casual Shoes",
    "Sports Shoes",
    "Heels",
    "Handbags",
    "Watches",
    "Sunglasses",
    "Wallets",
    "Backpacks",
)
PER_TYPE = 100
DUPLICATE_GROUPS = 12
PLANTED = 40  # sessions per planted pair
SIMULATION = SimulateSettings(users=300, days=5)


def mini_settings() -> Settings:
    """The configured settings with fast learned recommenders (what the mini engine is built
    with; pass them to any rebuild of a copy)."""
    s = load_settings()
    feed = s.surfaces.feed.model_copy(
        update={
            "two_tower": TwoTowerConfig(epochs=5, dim=32, hidden=64),
            "sequence": SequenceConfig(dim=32, n_layers=1, epochs=20, max_minutes=0.5),
            "interests": InterestsConfig(dim=64),
        }
    )
    s.surfaces = s.surfaces.model_copy(update={"feed": feed})
    multihead = s.rank.multihead.model_copy(update={"max_rows": 20_000, "epochs": 4})
    s.rank = s.rank.model_copy(update={"multihead": multihead})
    text_image = s.retrieve.text_image.model_copy(update={"titles": False})  # embeds no titles
    s.retrieve = s.retrieve.model_copy(update={"text_image": text_image})
    s.visual_head = s.visual_head.model_copy(
        update={"epochs": 10, "max_seconds": 8.0, "max_items": 250}
    )
    return s


def rebuild_settings() -> Settings:
    """``mini_settings()`` with the rankers trained as briefly as they still build and load
    (LambdaMART 10 trees, the multi-head model 1 epoch on 2,000 rows): for a test that
    rebuilds a copy to exercise the build's files or the live swap, not the models' quality."""
    s = mini_settings()
    lambdamart = s.rank.lambdamart.model_copy(update={"n_estimators": 10})
    multihead = s.rank.multihead.model_copy(update={"max_rows": 2_000, "epochs": 1})
    s.rank = s.rank.model_copy(update={"lambdamart": lambdamart, "multihead": multihead})
    return s


def _duplicates(rows: list[int], images: list[str | None]) -> list[list[int]]:
    """Groups of rows whose image files have the same bytes, in catalog order."""
    by_hash: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if images[r]:
            by_hash[hashlib.sha1(Path(images[r]).read_bytes()).hexdigest()].append(r)
    return [g for g in by_hash.values() if len(g) > 1]


def mini_products() -> pa.Table:
    """The mini engine's catalog: a slice of the real fashion products."""
    t = load_fashion().products
    types = t.column("articleType").to_pylist()
    rows_of = {a: [i for i, x in enumerate(types) if x == a] for a in TYPES}
    keep = {r for a in TYPES for r in rows_of[a][:PER_TYPE]}
    dups = _duplicates([r for a in TYPES for r in rows_of[a]], t.column("image").to_pylist())
    return t.take(sorted(keep | {r for g in dups[:DUPLICATE_GROUPS] for r in g}))


def planted_events(products: pa.Table) -> pa.Table:
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


def build_mini(root: Path) -> Workspace:
    """Ingest, simulate, plant and build the mini engine in ``root``."""
    products = mini_products()
    ws = Workspace(root)
    assert ingest_catalog(ws, [products]).quarantined == 0
    run_simulation(ws, SIMULATION)
    assert ingest_events(ws, [planted_events(products)]).quarantined == 0
    build(ws, settings=mini_settings())
    return ws


def copy_workspace(ws: Workspace, root: Path) -> Workspace:
    """A private copy of a workspace in ``root`` (database, events, artifacts, caches)."""
    shutil.copytree(ws.root, root, symlinks=True)
    return Workspace(root).init()


def share_embeddings(src: Workspace, dest: Workspace) -> None:
    """Copy ``src``'s embedding cache (``cache/``, keyed by content) into ``dest``, so a build
    of ``dest`` embeds only the texts and images ``src`` has not."""
    shutil.copytree(src.root / "cache", dest.root / "cache", dirs_exist_ok=True)


def fingerprint(ws: Workspace) -> dict[str, tuple[int, int]]:
    """Every path in the workspace with its size and modification time (files) or (0, 0)."""
    out = {}
    for p in ws.root.rglob("*"):
        st = p.lstat()
        out[str(p.relative_to(ws.root))] = (0, 0) if p.is_dir() else (st.st_size, st.st_mtime_ns)
    return out
