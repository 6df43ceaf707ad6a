"""The visual search surface's steps: ``prepare/visual`` (an uploaded photo, optionally
cropped, and optional words -> its query vector, its predicted category and the objects in it)
and ``blend/visual``.

The chain: decode the upload and crop it (``understand.upload``, the ``encode_upload``
resource), embed it with the image encoder (never cached: uploads are one-off), search the
``visual/*`` sources within the optional filter, fuse, drop near-identical images if set
(``blend/visual``), and fill the page from the fallback sources.

Without a crop, when the engine has a detector (``detect_photo``), the photo is decoded once,
its objects are found (``understand.detect``), the whole photo and each object's crop are
embedded in one batch (``embed_images``), and each object is searched as a further list of the
same chain (``object/<i>``), its row kept by ``blend/visual`` in the ``objects`` of the
prepared context. The category classifier (``image_category``) predicts the category of the
photo and of each object: at least ``filter_confidence`` sure it filters, at least
``boost_confidence`` sure it boosts; a category the client asked for wins.

A composed query ("like this, but red": the photo and ``request.query``) is understood as
``/search`` understands a query (``understand`` resource): its text is embedded (``encode``
resource) and projected into the image space by the ``text_source`` head
(``dense/text_image``), and each query vector (the photo's, each object's) becomes
``unit(image + w x text)`` (``VisualConfig``); the colours, genders, article types and usages
it names put the items with all of them first (``search.attributes_first``, with a filtered
probe for the photo's list), as on ``/search``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from moodboard.blend.boosts import boost_matches
from moodboard.blend.dedup import dedup_images
from moodboard.data import Candidates, ItemFilter, Request
from moodboard.retrieve import SourceQuery
from moodboard.surfaces.recent import rank_query
from moodboard.surfaces.runner import Prepared, Probe, Retrieved, SurfaceEnv, SurfaceResult
from moodboard.surfaces.search import (
    ATTRIBUTES_LIST,
    attributes_first,
    match_tiers,
    named_attributes,
    search_text,
)
from moodboard.surfaces.steps import register_blend, register_prepare
from moodboard.understand.categorize import CategoryClassifier, CategoryConfig
from moodboard.understand.detect import PhotoLook

#: Embeds one upload: ``(bytes, crop or None) -> (dim,)`` unit vector; raises ``InputError``.
EncodeUpload = Callable[[bytes, tuple[int, int, int, int] | None], np.ndarray]
#: The resource that finds objects: ``bytes -> PhotoLook`` (raises ``InputError``).
DETECT = "detect_photo"
#: The resource of the image category classifier (``CategoryClassifier``).
CATEGORY = "image_category"
#: The context key of a composed query's explanation (``?explain=1``).
COMPOSED = "composed"


@dataclass(frozen=True)
class Guess:
    """A predicted category, its probability and how it was applied: ``filter``, ``boost``,
    ``none`` (not sure enough) or ``client`` (the request named a category)."""

    category: str
    confidence: float
    applied: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``?explain=1``."""
        return {"category": self.category, "confidence": round(self.confidence, 4)} | {
            "applied": self.applied
        }


@dataclass
class FoundObject:
    """One detected object: its box, objectness, category guess and (after ``blend/visual``)
    its row of items."""

    box: tuple[int, int, int, int]
    score: float
    guess: Guess | None
    items: Candidates | None = None


def _guess(clf: CategoryClassifier | None, vectors: np.ndarray, client: bool) -> list[Guess | None]:
    if clf is None or len(vectors) == 0:
        return [None] * len(vectors)
    cfg: CategoryConfig = clf.config
    out: list[Guess | None] = []
    for cat, p in clf.predict(vectors):
        if client:
            applied = "client"
        elif p >= cfg.filter_confidence:
            applied = "filter"
        elif p >= cfg.boost_confidence:
            applied = "boost"
        else:
            applied = "none"
        out.append(Guess(cat, p, applied))
    return out


def _filter(base: ItemFilter | None, guess: Guess | None) -> ItemFilter | None:
    """``base`` and, for a guess applied as a filter, its category."""
    if guess is None or guess.applied != "filter":
        return base
    base = base or ItemFilter()
    attrs = dict(base.attributes) | {"category": (guess.category,)}
    return base.model_copy(update={"attributes": attrs})


def _has_category(f: ItemFilter | None) -> bool:
    return f is not None and "category" in f.attributes


def compose(
    text: str, env: SurfaceEnv
) -> tuple[np.ndarray | None, dict[str, Any], dict[str, float]]:
    """What ``text`` adds to an image vector: ``w x head(text)`` (None without a loaded
    ``text_source`` or ``encode`` resource, or a zero weight), ``w`` the config's
    ``text_weight_named`` when the text names attributes that go first, else ``text_weight``;
    the context (parse, what the text names, its explanation); the sub-steps' milliseconds."""
    cfg = env.config
    t0 = time.perf_counter()
    parsed = env.resources["understand"](text)
    query_text = search_text(parsed, text)
    named = named_attributes(parsed, env) if cfg.attribute_first else {}
    timings = {"understand": (time.perf_counter() - t0) * 1e3}
    head = env.sources.get(cfg.text_source)
    encode = env.resources.get("encode")
    weight = cfg.text_weight_named if named else cfg.text_weight
    shift = None
    if head is not None and encode is not None and weight > 0:
        t1 = time.perf_counter()
        shift = weight * head.project(encode([query_text]))[0]  # type: ignore[union-attr]
        timings["encode_text"] = (time.perf_counter() - t1) * 1e3
    explained = {
        "text": text,
        "understood": query_text,
        "text_source": cfg.text_source if shift is not None else None,
        "text_weight": weight if shift is not None else 0.0,
        "attributes": {a: list(v) for a, v in named.items()},
    }
    return shift, {"parsed": parsed, ATTRIBUTES_LIST: named, COMPOSED: explained}, timings


def _moved(vectors: np.ndarray, shift: np.ndarray | None) -> np.ndarray:
    """Unit rows of ``vectors + shift`` (``vectors`` as they are without a shift)."""
    if shift is None or len(vectors) == 0:
        return vectors
    moved = vectors + shift
    norms = np.maximum(np.linalg.norm(moved, axis=-1, keepdims=True), 1e-12)
    return (moved / norms).astype(np.float32)


@register_prepare("prepare/visual")
def prepare_visual(request: Request, need: int, env: SurfaceEnv) -> Prepared:
    """Embed ``request.image`` (cropped to ``request.crop``), composed with ``request.query``
    when given, and ask the image-space sources; without a crop, also find the objects in it
    and ask the sources for each.

    Raises
    ------
    InputError
        If the upload is not a decodable image ("could not decode the upload as
        an image: send a JPEG, PNG or WebP") or the crop box is not inside it.
    """
    t0 = time.perf_counter()
    detect = env.resources.get(DETECT)
    timings: dict[str, float] = {}
    if request.crop is None and detect is not None:
        look: PhotoLook = detect(request.image or b"")
        timings |= look.timings_ms
    else:
        encode: EncodeUpload = env.resources["encode_upload"]
        look = PhotoLook(encode(request.image or b"", request.crop))
    timings["encode"] = (time.perf_counter() - t0) * 1e3
    f = request.item_filter
    f = None if f is None or f.is_empty() else f
    clf: CategoryClassifier | None = env.resources.get(CATEGORY)
    vectors = np.vstack([look.vector[None], look.object_vectors.reshape(-1, len(look.vector))])
    guesses = _guess(clf, vectors, _has_category(f))  # of the photo as it looks, before words
    context: dict[str, Any] = {}
    text = (request.query or "").strip()
    if text:
        shift, context, more = compose(text, env)
        vectors = _moved(vectors, shift)
        timings |= more
    main_filter = _filter(f, guesses[0])
    names = [n for n in env.config.sources if env.item_vectors(n) is not None]
    skip = env.indices(request.exclude)  # e.g. the product the photo was taken of
    probes = {
        n: Probe(SourceQuery(vector=vectors[0], item_filter=main_filter, exclude=skip))
        for n in names
    }
    objects = [
        FoundObject(box, score, g)
        for box, score, g in zip(look.boxes, look.scores, guesses[1:], strict=True)
    ]
    lists = {
        f"object/{i}": {
            n: Probe(SourceQuery(vector=v, item_filter=_filter(f, o.guess), exclude=skip))
            for n in names
        }
        for i, (o, v) in enumerate(zip(objects, vectors[1:], strict=False))
    }
    named = context.get(ATTRIBUTES_LIST)
    if named:  # the items with every named value, asked of each source too
        narrowed = (main_filter or ItemFilter()).model_copy(
            update={"attributes": {**named, **(f.attributes if f is not None else {})}}
        )
        lists[ATTRIBUTES_LIST] = {
            n: Probe(replace(p.query, item_filter=narrowed)) for n, p in probes.items()
        }
    return Prepared(
        probes,
        max(env.config.per_source, need),
        lists=lists,
        list_depth=max(4 * env.config.object_items, 20),
        item_filter=main_filter,
        rank=rank_query(request, env.resources),
        context=context | {"category": guesses[0], "objects": objects},
        timings_ms=timings,
    )


def _boosted(cand: Candidates, guess: Guess | None, env: SurfaceEnv) -> Candidates:
    """``cand`` with the items of a guess applied as a boost multiplied (``boost``)."""
    if guess is None or guess.applied != "boost" or len(cand) == 0:
        return cand
    leaf = env.memo("leaf_category", env.catalog.leaf_category)
    matches = leaf[cand.items] == guess.category
    clf: CategoryClassifier = env.resources[CATEGORY]
    return boost_matches(cand, matches, clf.config.boost)


@register_blend("blend/visual")
def blend_visual(
    retrieved: Retrieved, prepared: Prepared, need: int, env: SurfaceEnv
) -> Candidates:
    """The predicted category's boost, then near-identical images dropped (``blend/dedup``),
    then the items with every value a composed query's words name first, for the photo's list
    and for each object's row (kept in the context's ``objects``)."""
    cfg = env.config
    dedup = env.item_vectors(cfg.dedup_source)
    empty = Candidates.empty()
    named = prepared.context.get(ATTRIBUTES_LIST) or {}
    objects: Sequence[FoundObject] = prepared.context.get("objects", ())
    for i, obj in enumerate(objects):
        row = _boosted(retrieved.lists.get(f"object/{i}", empty), obj.guess, env)
        if named and len(row):
            row = row.take(np.argsort(match_tiers(row.items, named, env), kind="stable"))
        kept = dedup_images(row, dedup, cfg.dedup_threshold, None, cfg.object_items)
        obj.items = kept.head(cfg.object_items)
    main = _boosted(retrieved.main, prepared.context.get("category"), env)
    main = dedup_images(main, dedup, cfg.dedup_threshold, None, need)
    return attributes_first(main, retrieved, prepared, env)


def found_objects(res: SurfaceResult) -> list[FoundObject]:
    """The objects a visual search found, each with its row (empty with a crop)."""
    if res.prepared is None:
        return []
    return list(res.prepared.context.get("objects", ()))


def image_category(res: SurfaceResult) -> Guess | None:
    """The predicted category of the photo (None without a classifier)."""
    return None if res.prepared is None else res.prepared.context.get("category")
