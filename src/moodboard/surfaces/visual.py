"""Visual search: an uploaded photo, optionally cropped, -> the catalog items that look like it.

The chain: decode the upload and crop it (``understand.upload``), embed it with the image
encoder (never cached: uploads are one-off), search the ``visual/*`` sources within the
optional filter, fuse, optionally drop near-identical images, and fill the page from the
fallback sources.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np

from moodboard.config import VisualConfig
from moodboard.data import Catalog, ItemFilter
from moodboard.retrieve import CandidateSource, Fuser, SourceQuery
from moodboard.surfaces.base import (
    SurfaceResult,
    check_k,
    dedup_images,
    fill_page,
    item_vectors,
)

_log = logging.getLogger(__name__)

#: Embeds one upload: ``(bytes, crop or None) -> (dim,)`` unit vector; raises ``InputError``.
EncodeUpload = Callable[[bytes, tuple[int, int, int, int] | None], np.ndarray]


class VisualChain:
    """Runs one visual search.

    Parameters
    ----------
    catalog
        The items.
    sources
        Fitted sources by name; ``config.sources`` name image-space vector sources.
    encode
        Embeds an upload, e.g. ``ImageEncoder().encode_upload``.
    config
        Source names, fusion, deduplication and fallback.
    """

    def __init__(
        self,
        catalog: Catalog,
        sources: Mapping[str, CandidateSource],
        encode: EncodeUpload,
        config: VisualConfig | None = None,
    ) -> None:
        self.catalog = catalog
        self.sources = dict(sources)
        self.encode = encode
        self.config = config or VisualConfig()
        self.fuser = Fuser(self.config.fuse)

    def __call__(
        self,
        image: bytes,
        k: int = 24,
        crop: tuple[int, int, int, int] | None = None,
        item_filter: ItemFilter | None = None,
    ) -> SurfaceResult:
        """The catalog items that look most like the photo (or the cropped part of it).

        Parameters
        ----------
        image
            The uploaded file's bytes (JPEG, PNG or WebP; other formats are refused).
        k
            The page size.
        crop
            ``(x, y, w, h)`` in pixels of the upright upload, each side >= 8 px; None: all.
        item_filter
            Hard constraints (e.g. a category), applied inside the search.

        Returns
        -------
        SurfaceResult
            Up to ``k`` items by image similarity (the cosine is the ``visual/image``
            column), filled from the fallback sources when the search returns fewer.

        Raises
        ------
        InputError
            If the upload is not a decodable image ("could not decode the upload as an image:
            send a JPEG, PNG or WebP") or the crop box is not inside it.
        ConfigError
            If ``k`` is not an int >= 1.
        """
        k = min(check_k(k, "VisualChain"), max(1, len(self.catalog)))  # never past the catalog
        cfg = self.config
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        vector = self.encode(image, crop)
        t["encode"] = (time.perf_counter() - t0) * 1e3
        f = None if item_filter is None or item_filter.is_empty() else item_filter
        query = SourceQuery(vector=vector, item_filter=f)
        parts = {}
        for name in cfg.sources:
            if item_vectors(self.sources, name) is not None:
                t1 = time.perf_counter()
                parts[name] = self.sources[name](query, max(cfg.per_source, k))
                t[name] = (time.perf_counter() - t1) * 1e3
        t1 = time.perf_counter()
        fused = self.fuser(parts)
        dedup = item_vectors(self.sources, cfg.dedup_source)
        fused = dedup_images(fused, dedup, cfg.dedup_threshold, limit=k)
        page = fill_page(fused, k, self.catalog, self.sources, cfg.fallback, f)
        t["fuse"] = (time.perf_counter() - t1) * 1e3
        t["total"] = (time.perf_counter() - t0) * 1e3
        return SurfaceResult(page.head(k), t)
