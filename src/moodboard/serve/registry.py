"""The artifact registry: loads the live version named by ``CURRENT`` into an ``Engine``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from moodboard.data import Catalog
from moodboard.errors import NotFoundError
from moodboard.ingest import Workspace
from moodboard.retrieve import BM25Source, DenseSource, PopularSource, Source
from moodboard.surfaces import SearchChain, SearchConfig
from moodboard.understand.query import QueryUnderstanding
from moodboard.understand.text import TextEncoder

_log = logging.getLogger(__name__)


@dataclass
class Engine:
    """Everything one artifact version serves."""

    version: str
    path: Path
    manifest: dict[str, Any]
    catalog: Catalog
    sources: dict[str, Source]
    understand: QueryUnderstanding
    search: SearchChain
    text_encoder: TextEncoder

    @classmethod
    def load(cls, ws: Workspace, version: str | None = None) -> Engine:
        """Load a version (default: the live one).

        Raises
        ------
        NotFoundError
            If nothing was built yet or the version does not exist.
        """
        version = version or ws.current_artifact()
        if version is None:
            raise NotFoundError(f"No artifact is live in {ws.root}: run `moodboard build`.")
        path = ws.artifacts_dir / version
        if not (path / "manifest.json").is_file():
            raise NotFoundError(f"Artifact {version!r} does not exist in {ws.artifacts_dir}.")
        manifest = json.loads((path / "manifest.json").read_text())
        catalog = Catalog.from_table(pq.read_table(path / "products.parquet"))
        sources: dict[str, Source] = {
            "lexical/bm25": BM25Source.load(path / "lexical", catalog),
            "dense/text": DenseSource.load(path / "dense_text", catalog),
            "popular/trending": PopularSource.load(path / "popular", catalog),
        }
        if (path / "visual_image").is_dir():
            sources["visual/image"] = DenseSource.load(
                path / "visual_image", catalog, name="visual/image"
            )
        understand = QueryUnderstanding.load(path / "understand")
        enc = TextEncoder()
        chain = SearchChain(
            catalog,
            sources,
            understand,
            encode=lambda texts: enc.encode(texts),
            config=SearchConfig(),
        )
        _log.info("loaded artifact %s", version)
        return cls(version, path, manifest, catalog, sources, understand, chain, enc)

    def has_images(self) -> np.ndarray:
        """Which items have an image embedding."""
        p = self.path / "visual_image" / "has_image.npy"
        return np.load(p) if p.exists() else np.zeros(len(self.catalog), dtype=bool)
