"""What the build steps read: the workspace's catalog and engagement, each computed once.

A ``BuildContext`` holds the catalog snapshot and the settings; the inputs several steps share
(text and image embeddings, users' sequences, search queries, the accounts flagged as bots) are
computed on first use and kept for the next step that asks. Steps that learn from engagement
read ``events()``: the log without the bots' events.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC
from functools import cached_property
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from moodboard.config import Settings
from moodboard.data import Catalog
from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.ingest import Workspace
from moodboard.pipelines import connect
from moodboard.pipelines.bots import BOTS_SCHEMA, Bots, bots_table
from moodboard.pipelines.interactions import interactions
from moodboard.pipelines.sequences import (
    ITEM_IDS,
    TIMESTAMPS,
    WEIGHTS,
    SequencesConfig,
    sequences_table,
)
from moodboard.understand.cache import EmbeddingCache
from moodboard.understand.image import ImageEncoder
from moodboard.understand.image_shared import encode_shared
from moodboard.understand.text import TextEncoder

_log = logging.getLogger(__name__)


class BuildContext:
    """The inputs of one build.

    Parameters
    ----------
    ws
        The workspace.
    products
        Its products table (the catalog snapshot the version is built on).
    settings
        The components' configs.
    engine
        Where the engagement pipelines run: ``duckdb`` or ``spark``.
    """

    def __init__(
        self, ws: Workspace, products: pa.Table, settings: Settings, engine: str = "duckdb"
    ) -> None:
        self.ws = ws
        self.products = products
        self.settings = settings
        self.engine = engine
        self.catalog = Catalog.from_table(products)
        #: What one step leaves for a later one (e.g. the recommenders' validation lists).
        self.shared: dict[str, Any] = {}
        self._images: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}
        #: The manifest entries of the components built so far (a later step may open them).
        self.built: dict[str, dict[str, Any]] = {}

    @property
    def has_events(self) -> bool:
        """Whether the workspace holds any engagement."""
        return bool(self.ws.events.files())

    @property
    def has_sequences(self) -> bool:
        """Whether some user has two interactions: what the learned recommenders (and the
        ImageNet item features they read) need to train."""
        return self.has_events and any(len(s) >= 2 for s in self.sequences[1])

    @cached_property
    def bots(self) -> Bots:
        """The accounts flagged as bots (``pipelines.bots`` with ``settings.bots``)."""
        if not self.has_events:
            return Bots(BOTS_SCHEMA.empty_table(), self.settings.bots)
        raw = connect(self.engine).read_parquet(self.ws.events.glob())
        return bots_table(raw, self.settings.bots)

    @cached_property
    def events_until(self) -> str | None:
        """The newest event time the build reads (ISO 8601), None without events: the server
        counts its buffered actions after it only (``surfaces.recent``)."""
        if not self.has_events:
            return None
        raw = connect(self.engine).read_parquet(self.ws.events.glob())
        newest = raw[C.TS].max().to_pyarrow().as_py()
        if newest is None:
            return None
        return (newest if newest.tzinfo else newest.replace(tzinfo=UTC)).isoformat()

    def events(self) -> ir.Table:
        """The event log on the build's engine without the flagged accounts' events: what
        every step that learns from engagement reads (labels, histories, queries; popularity and
        complements leave ``bots`` out of their own reads).

        Raises
        ------
        InputError
            If the workspace has no events (check ``has_events`` first).
        """
        if not self.has_events:
            raise InputError(f"The workspace {self.ws.root} has no events: ingest some first.")
        raw = connect(self.engine).read_parquet(self.ws.events.glob())
        if not self.bots.flagged.num_rows:
            return raw
        return raw.anti_join(self.bots.exclude(), C.USER_ID)

    def _cache(self, dim: int, name: str) -> EmbeddingCache:
        return EmbeddingCache(self.ws.root / "cache" / "embeddings", dim, name)

    @cached_property
    def text(self) -> tuple[np.ndarray, dict[str, Any]]:
        """Every product's text embedding, and the encoder's name and dimension."""
        enc = TextEncoder()
        texts = [self.catalog.search_text(i) for i in range(len(self.catalog))]
        vecs = enc.encode(texts, cache=self._cache(enc.dim, enc.cache_name))
        return vecs, {"encoder": enc.cache_name, "dim": enc.dim}

    @cached_property
    def titles(self) -> np.ndarray:
        """Every product's title embedding (the text-to-image head's second text view)."""
        enc = TextEncoder()
        titles = [t or "" for t in self.catalog.title]
        return enc.encode(titles, cache=self._cache(enc.dim, enc.cache_name))

    @property
    def images(self) -> tuple[np.ndarray, np.ndarray] | None:
        """ImageNet image embeddings (zero rows for items without one) and which items have
        one; None when no product has a readable image."""
        return self.image_features(ImageEncoder())

    def image_features(
        self, enc: ImageEncoder, also: Sequence[ImageEncoder] = ()
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``enc``'s embeddings of the product images (computed once per build and encoder,
        cached by content) and which items have one; None when no image is readable.

        ``also``: encoders (differing from ``enc`` only by their tail) whose features a later
        step will read; their images new to every cache are embedded in the same pass, each
        decoded and its shared blocks run once (``understand.image_shared``).
        """
        todo = {e.cache_name: e for e in (enc, *also) if e.cache_name not in self._images}
        if len(todo) > 1:
            encoders = list(todo.values())
            caches = [self._cache(e.dim, e.cache_name) for e in encoders]
            encode_shared(encoders, [p for p in self.catalog.image if p], caches)
        for name, e in todo.items():
            self._images[name] = self._embed_images(e)
        return self._images[enc.cache_name]

    def _embed_images(self, enc: ImageEncoder) -> tuple[np.ndarray, np.ndarray] | None:
        catalog = self.catalog
        has = np.array([bool(p) and Path(p).is_file() for p in catalog.image])
        if not has.any():
            return None
        vecs = np.zeros((len(catalog), enc.dim), dtype=np.float32)
        idx = np.flatnonzero(has)
        vecs[idx] = enc.encode_paths(
            [catalog.image[i] for i in idx],
            cache=self._cache(enc.dim, enc.cache_name),
            skip_bad=True,
        )
        has[idx] = np.any(vecs[idx], axis=1)  # undecodable images were skipped with a warning
        if not has.any():
            return None
        return vecs, has

    @property
    def sequences(self) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
        """Users, their last ``surfaces.feed.history_length`` interactions (item indices,
        oldest first) and weights.

        Items no longer in the catalog are dropped; an item repeated right after itself (a
        click, then a save of the same item) is one step, weighted by its strongest action.
        """
        users, seqs, weights, _ = self._sequences
        return users, seqs, weights

    @property
    def sequence_times(self) -> list[np.ndarray]:
        """When each step of ``sequences`` happened (its first action; int64 microseconds
        since the epoch), aligned with them."""
        return self._sequences[3]

    @cached_property
    def _sequences(
        self,
    ) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        if not self.has_events:
            return [], [], [], []
        length = self.settings.surfaces.feed.history_length
        acts = interactions(self.events(), keep_us=True)
        t = sequences_table(acts, SequencesConfig(max_length=length))
        users, seqs, weights, times = [], [], [], []
        for user, ids, w, ts in zip(
            t.column("user_id").to_pylist(),
            t.column(ITEM_IDS).to_pylist(),
            t.column(WEIGHTS).to_pylist(),
            t.column(TIMESTAMPS).cast(pa.list_(pa.int64())).to_pylist(),
            strict=True,
        ):
            idx = self.catalog.ids.indices(ids, missing=-1)
            w = np.asarray(w, dtype=np.float32)[idx >= 0]
            ts = np.asarray(ts, dtype=np.int64)[idx >= 0]
            idx = idx[idx >= 0].astype(np.int64)
            if not len(idx):
                continue
            start = np.flatnonzero(np.concatenate([[True], idx[1:] != idx[:-1]]))
            users.append(user)
            seqs.append(idx[start])
            weights.append(np.maximum.reduceat(w, start))
            times.append(ts[start])
        return users, seqs, weights, times

    def search_queries(self) -> list[str]:
        """The text of every logged search."""
        if not self.has_events:
            return []
        t = self.events()
        q = t.filter((t.type == "search") & t.query.notnull()).select("query")
        return [r for r in q.to_pyarrow().column(0).to_pylist() if r]
