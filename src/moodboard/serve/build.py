"""``moodboard build``: a new artifact version from the workspace, made live only if whole.

The version is built in ``artifacts/.building-<version>``, fsynced, renamed into place, and only
then named by ``CURRENT`` (``serve.artifacts.publish``); a failed build leaves the live version
untouched. The newest ``build.keep_versions`` versions are kept, older ones deleted.

Layout of a version::

    products.parquet      the catalog snapshot the indexes were built on
    lexical/              tantivy index (lexical/bm25)
    dense_text/           FAISS index + vectors of text embeddings (dense/text)
    visual_image/         FAISS index + vectors of image embeddings (visual/image), if images
    popular/              time-decayed popularity (popular/trending)
    two_tower/            the two-tower feed model: state dict, item vectors, users (two_tower)
    sequence/ graph_walks/ user_interests/  the other recommenders (folder: the registry name
                          with "/" as "_"); every source folder holds a source.json
    feed/fusion.json      the feed's fusion weights, tuned on held-out interactions
    feed/histories.parquet  each user's recent interactions, for the feed
    related/complements.json  complementary categories from co-engagement (related products)
    understand/           query understanding (spelling, lexicons, intent)
    manifest.json         what, from which data, with which parameters, and timings
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from moodboard import __version__
from moodboard.config import ComplementsConfig, Settings, load_settings
from moodboard.data import Catalog
from moodboard.errors import InputError
from moodboard.ingest import Workspace
from moodboard.ingest.workspace import VERSION_FORMAT
from moodboard.pipelines import connect, popularity_table
from moodboard.pipelines.coengagement import GROUP, coengagement_table
from moodboard.pipelines.interactions import interactions
from moodboard.pipelines.sequences import ITEM_IDS, WEIGHTS, SequencesConfig, sequences_table
from moodboard.retrieve import BM25Source, DenseSource, PopularSource, TrainingData, VisualSource
from moodboard.retrieve.item_features import attribute_codes
from moodboard.serve.artifacts import publish
from moodboard.serve.build_feed import train_feed
from moodboard.surfaces.complements import COMPLEMENTS_FILE, Complements, learn_complements
from moodboard.surfaces.feed import HISTORIES_FILE, UserHistories
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.image import ImageEncoder
from moodboard.understand.query import QueryUnderstanding
from moodboard.understand.text import TextEncoder

_log = logging.getLogger(__name__)
Say = Callable[[str], None]


def _text_vectors(ws: Workspace, catalog: Catalog) -> tuple[np.ndarray, dict[str, Any]]:
    enc = TextEncoder()
    cache = EmbeddingCache(ws.root / "cache" / "embeddings", enc.dim, enc.cache_name)
    vecs = enc.encode([catalog.search_text(i) for i in range(len(catalog))], cache=cache)
    return vecs, {"encoder": enc.cache_name, "dim": enc.dim}


def _image_vectors(ws: Workspace, catalog: Catalog) -> tuple[np.ndarray, np.ndarray] | None:
    has = np.array([bool(p) and Path(p).is_file() for p in catalog.image])
    if not has.any():
        return None
    enc = ImageEncoder()
    cache = EmbeddingCache(ws.root / "cache" / "embeddings", enc.dim, enc.cache_name)
    vecs = np.zeros((len(catalog), enc.dim), dtype=np.float32)
    idx = np.flatnonzero(has)
    vecs[idx] = enc.encode_paths([catalog.image[i] for i in idx], cache=cache, skip_bad=True)
    has[idx] = np.any(vecs[idx], axis=1)  # undecodable images were skipped with a warning
    if not has.any():
        return None
    return vecs, has


def _popularity(ws: Workspace, catalog: Catalog, source: PopularSource, engine: str) -> np.ndarray:
    """Each item's time-decayed, action-weighted engagement (``PopularSource``'s config)."""
    scores = np.zeros(len(catalog))
    if not ws.events.files():
        return scores
    t = popularity_table(
        connect(engine), ws.events.glob(), source.config.weights, source.config.half_life_days
    )
    idx = catalog.ids.indices(t.column("item_id").to_pylist(), missing=-1)
    ok = idx >= 0
    scores[idx[ok]] = np.asarray(t.column("score").to_pylist(), dtype=np.float64)[ok]
    return scores


def _complements(
    ws: Workspace, catalog: Catalog, cfg: ComplementsConfig, engine: str
) -> Complements:
    """Complementary categories from sessions and boards (saves and the boards table)."""
    groups: list[str] = []
    ids: list[str] = []
    if ws.events.files():
        t = coengagement_table(
            connect(engine), ws.events.glob(), cfg.actions, cfg.session_gap_minutes
        )
        groups += t.column(GROUP).to_pylist()
        ids += t.column("item_id").to_pylist()
    for board in ws.boards():
        groups += [f"b:{board.id}"] * len(board.item_ids)
        ids += list(board.item_ids)
    idx = catalog.ids.indices(ids, missing=-1)
    known = idx >= 0
    return learn_complements(
        catalog.category, np.asarray(groups, dtype=object)[known], idx[known], cfg
    )


def _sequences(
    ws: Workspace, catalog: Catalog, length: int, engine: str
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Users, their last ``length`` interactions (item indices, oldest first) and weights.

    Items no longer in the catalog are dropped; an item repeated right after itself (a click,
    then a save of the same item) is one step, weighted by its strongest action.
    """
    if not ws.events.files():
        return [], [], []
    acts = interactions(connect(engine).read_parquet(ws.events.glob()), keep_us=True)
    t = sequences_table(acts, SequencesConfig(max_length=length))
    users, seqs, weights = [], [], []
    for user, ids, w in zip(
        t.column("user_id").to_pylist(),
        t.column(ITEM_IDS).to_pylist(),
        t.column(WEIGHTS).to_pylist(),
        strict=True,
    ):
        idx = catalog.ids.indices(ids, missing=-1)
        w = np.asarray(w, dtype=np.float32)[idx >= 0]
        idx = idx[idx >= 0].astype(np.int64)
        if not len(idx):
            continue
        start = np.flatnonzero(np.concatenate([[True], idx[1:] != idx[:-1]]))
        users.append(user)
        seqs.append(idx[start])
        weights.append(np.maximum.reduceat(w, start))
    return users, seqs, weights


def _search_queries(ws: Workspace, engine: str) -> list[str]:
    if not ws.events.files():
        return []
    con = connect(engine)
    t = con.read_parquet(ws.events.glob())
    q = t.filter((t.type == "search") & t.query.notnull()).select("query")
    return [r for r in q.to_pyarrow().column(0).to_pylist() if r]


def build(
    ws: Workspace,
    say: Say | None = None,
    settings: Settings | None = None,
    engine: str = "duckdb",
) -> dict[str, Any]:
    """Build every component from the workspace and make the new version live.

    Parameters
    ----------
    ws
        The workspace.
    say
        Receives a progress message per step (default: the log).
    settings
        Build parameters (``surfaces.related.complements``); default ``load_settings()``.
    engine
        Where the engagement pipelines run: ``duckdb`` (embedded, the default) or ``spark``
        (the active Spark session, or a local one).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    InputError
        If the workspace has no products.
    """
    say = say or (lambda m: _log.info(m))
    settings = settings or load_settings()
    products = ws.products_table()
    if products.num_rows == 0:
        raise InputError(f"The workspace {ws.root} has no products: ingest a catalog first.")
    catalog = Catalog.from_table(products)
    version = datetime.now(UTC).strftime(VERSION_FORMAT)
    tmp = ws.artifacts_dir / f".building-{version}"
    tmp.mkdir(parents=True)
    timings: dict[str, float] = {}
    components: dict[str, Any] = {}

    def step(name: str, message: str) -> Callable[[], None]:
        say(message)
        t0 = time.perf_counter()
        return lambda: timings.__setitem__(name, round(time.perf_counter() - t0, 2))

    try:
        pq.write_table(products, tmp / "products.parquet")
        retrieve = settings.retrieve
        done = step("lexical", f"indexing {len(catalog):,} products with tantivy")
        lex = BM25Source(retrieve.lexical).fit(TrainingData(catalog=catalog))
        lex.save(tmp / "lexical")
        components["lexical/bm25"] = {"path": "lexical", "config": lex.config.model_dump()}
        done()
        done = step("dense_text", f"embedding {len(catalog):,} product texts")
        vecs, meta = _text_vectors(ws, catalog)
        texts = TrainingData(catalog=catalog, item_features={"text": vecs})
        dense = DenseSource(retrieve.dense).fit(texts)
        dense.save(tmp / "dense_text")
        components["dense/text"] = {"path": "dense_text", **meta, "index": dense.index_type}
        done()
        done = step("visual_image", "embedding product images")
        images = _image_vectors(ws, catalog)
        if images is not None:
            pictures = TrainingData(catalog=catalog, item_features={"image": images[0]})
            visual = VisualSource(retrieve.visual).fit(pictures)
            visual.save(tmp / "visual_image")
            np.save(tmp / "visual_image" / "has_image.npy", images[1])
            components["visual/image"] = {
                "path": "visual_image",
                "images": int(images[1].sum()),
                "dim": int(images[0].shape[1]),
            }
        done()
        done = step("popular", "computing popularity from the event log")
        pop = PopularSource(retrieve.popular)
        scores = _popularity(ws, catalog, pop, engine)
        pop.fit(TrainingData(catalog=catalog, item_features={"popularity": scores}))
        pop.save(tmp / "popular")
        components["popular/trending"] = {
            "path": "popular",
            "config": pop.config.model_dump(),
            "items_with_engagement": int((pop.scores > 0).sum()),
        }
        done()
        done = step("complements", "learning complementary categories from co-engagement")
        comp = _complements(ws, catalog, settings.surfaces.related.complements, engine)
        comp.save(tmp / COMPLEMENTS_FILE)
        components["related/complements"] = {
            "path": COMPLEMENTS_FILE,
            "groups": comp.groups,
            "categories": len(comp.pairs),
            "pairs": sum(len(v) for v in comp.pairs.values()),
            "config": comp.config.model_dump(mode="json"),
        }
        done()
        done = step("feed", "training the feed's recommenders on user sequences")
        feed = settings.surfaces.feed
        users, seqs, weights = _sequences(ws, catalog, feed.history_length, engine)
        UserHistories(
            dict(zip(users, seqs, strict=True)), dict(zip(users, weights, strict=True))
        ).save(tmp / HISTORIES_FILE)
        components["feed/histories"] = {"path": HISTORIES_FILE, "users": len(users)}
        features: dict[str, Any] = {
            "text": vecs,
            "attributes": attribute_codes([catalog.category, *catalog.attributes.values()]),
        }
        if images is not None:
            features["image"] = images[0]
        data = TrainingData(len(catalog), seqs, features, weights, users, catalog)
        components |= train_feed(data, feed, tmp)
        if "two_tower" in components:
            components["two_tower"]["features"] = {
                k: list(np.shape(v)) for k, v in features.items()
            }
        done()
        done = step("understand", "fitting query understanding")
        queries = _search_queries(ws, engine)
        qu = QueryUnderstanding(settings.understand).fit(
            catalog_products(products), queries=queries
        )
        qu.save(tmp / "understand")
        components["understand"] = {"path": "understand", "queries": len(queries)}
        done()
        status = ws.status()
        manifest = {
            "version": version,
            "moodboard": __version__,
            "created_at": datetime.now(UTC).isoformat(),
            "data": {
                "products": status["products"],
                "events": status["events"],
                "events_total": status["events_total"],
                "users": status["users"],
            },
            "components": components,
            "timings_s": timings,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        publish(ws, tmp, version, settings.build.keep_versions)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"built {version}")
    return manifest


def catalog_products(products: Any) -> list[Any]:
    """``Product`` objects of a products table."""
    from moodboard.ingest.workspace import product_from_row

    return [product_from_row(r) for r in products.to_pylist()]
