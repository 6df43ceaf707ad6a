"""The visual search surface's step: ``prepare/visual`` (an uploaded photo, optionally
cropped, and optional words -> its query vector).

The chain: decode the upload and crop it (``understand.upload``, the ``encode_upload``
resource), embed it with the image encoder (never cached: uploads are one-off), search the
``visual/*`` sources within the optional filter, fuse, optionally drop near-identical images
(``blend/dedup``), and fill the page from the fallback sources.

A composed query ("like this, but red": the photo and ``request.query``) is understood as
``/search`` understands a query (``understand`` resource): its text is embedded (``encode``
resource) and projected into the image space by the ``text_source`` head
(``dense/text_image``), and the query vector is ``unit(image + w x text)`` (``VisualConfig``); the
colours, genders, article types and usages it names put the items with all of them first
(``search.attributes_first``, with a filtered probe), as on ``/search``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from moodboard.data import ItemFilter, Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.runner import Prepared, Probe, SurfaceEnv
from moodboard.surfaces.search import ATTRIBUTES_LIST, named_attributes, search_text
from moodboard.surfaces.steps import register_prepare

#: Embeds one upload: ``(bytes, crop or None) -> (dim,)`` unit vector; raises ``InputError``.
EncodeUpload = Callable[[bytes, tuple[int, int, int, int] | None], np.ndarray]
#: The context key of a composed query's explanation (``?explain=1``).
COMPOSED = "composed"


def compose(
    vector: np.ndarray, text: str, env: SurfaceEnv
) -> tuple[np.ndarray, dict[str, Any], dict[str, float]]:
    """The image ``vector`` moved toward ``text``: ``unit(vector + w x head(text))``, ``w``
    the config's ``text_weight_named`` when the text names attributes that go first, else
    ``text_weight`` (as it is without a loaded ``text_source`` or ``encode`` resource); what
    the text names; the sub-steps' milliseconds."""
    cfg = env.config
    t0 = time.perf_counter()
    parsed = env.resources["understand"](text)
    query_text = search_text(parsed, text)
    named = named_attributes(parsed, env) if cfg.attribute_first else {}
    timings = {"understand": (time.perf_counter() - t0) * 1e3}
    head = env.sources.get(cfg.text_source)
    encode = env.resources.get("encode")
    weight = cfg.text_weight_named if named else cfg.text_weight
    used = head is not None and encode is not None and weight > 0
    if used:
        t1 = time.perf_counter()
        moved = vector + weight * head.project(encode([query_text]))[0]  # type: ignore[union-attr]
        vector = (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)
        timings["encode_text"] = (time.perf_counter() - t1) * 1e3
    explained = {
        "text": text,
        "understood": query_text,
        "text_source": cfg.text_source if used else None,
        "text_weight": weight if used else 0.0,
        "attributes": {a: list(v) for a, v in named.items()},
    }
    return vector, {"parsed": parsed, ATTRIBUTES_LIST: named, COMPOSED: explained}, timings


@register_prepare("prepare/visual")
def prepare_visual(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Embed ``request.image`` (cropped to ``request.crop``), composed with
    ``request.query`` when given, and ask the image-space sources.

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
    context: dict[str, Any] = {}
    text = (request.query or "").strip()
    if text:
        vector, context, more = compose(vector, text, env)
        timings |= more
    f = request.item_filter
    f = None if f is None or f.is_empty() else f
    query = SourceQuery(vector=vector, item_filter=f)
    probes = {
        name: Probe(query) for name in env.config.sources if env.item_vectors(name) is not None
    }
    lists: dict[str, dict[str, Probe]] = {}
    named = context.get(ATTRIBUTES_LIST)
    if named:  # the items with every named value, asked of each source too
        narrowed = (f or ItemFilter()).model_copy(
            update={"attributes": {**named, **(f.attributes if f is not None else {})}}
        )
        lists[ATTRIBUTES_LIST] = {
            n: Probe(replace(p.query, item_filter=narrowed)) for n, p in probes.items()
        }
    return Prepared(
        probes,
        max(env.config.per_source, need),
        lists=lists,
        item_filter=f,
        rank=rank_query(request, env.resources),
        context=context,
        timings_ms=timings,
    )
