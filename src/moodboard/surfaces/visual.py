"""The visual search surface's step: ``prepare/visual`` (an uploaded photo, optionally
cropped -> its image vector).

The chain: decode the upload and crop it (``understand.upload``, the ``encode_upload``
resource), embed it with the image encoder (never cached: uploads are one-off), search the
``visual/*`` sources within the optional filter, fuse, optionally drop near-identical images
(``blend/dedup``), and fill the page from the fallback sources.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from moodboard.data import Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.runner import Prepared, Probe, SurfaceEnv
from moodboard.surfaces.steps import register_prepare

#: Embeds one upload: ``(bytes, crop or None) -> (dim,)`` unit vector; raises ``InputError``.
EncodeUpload = Callable[[bytes, tuple[int, int, int, int] | None], np.ndarray]


@register_prepare("prepare/visual")
def prepare_visual(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Embed ``request.image`` (cropped to ``request.crop``) and ask the image-space sources.

    Raises
    ------
    InputError
        If the upload is not a decodable image ("could not decode the upload as
        an image: send a JPEG, PNG or WebP") or the crop box is not inside it.
    """
    t0 = time.perf_counter()
    encode: EncodeUpload = env.resources["encode_upload"]
    vector = encode(request.image or b"", request.crop)
    timings = {"encode": (time.perf_counter() - t0) * 1e3}
    f = request.item_filter
    f = None if f is None or f.is_empty() else f
    query = SourceQuery(vector=vector, item_filter=f)
    probes = {
        name: Probe(query) for name in env.config.sources if env.item_vectors(name) is not None
    }
    return Prepared(
        probes,
        max(env.config.per_source, need),
        item_filter=f,
        rank=rank_query(request, env.resources),
        timings_ms=timings,
    )
