"""``POST /visual-search``: products that look like a photo (or the cropped part of it).

Without a crop the page also lists the objects found in the photo (``objects``: each one's
``box`` as ``[x, y, w, h]`` in pixels of the upright upload, its ``category``, ``confidence``
and ``items``); with a crop, ``objects`` is empty. ``?explain=1`` adds ``image_category``: the
photo's predicted category, its confidence and whether it was applied as a filter or a boost.

The upload is bounded (``serve.max_upload_mb``, ``serve.max_image_pixels``) and decodes are
bounded too (``serve.max_concurrent_decodes``: past it, 503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse

from moodboard.data import Candidates
from moodboard.errors import InputError
from moodboard.serve.pages import build_page
from moodboard.serve.registry import Engine
from moodboard.serve.routes.common import (
    PageParams,
    arms_of,
    cards_of,
    check_k,
    engine_of,
    item_filter,
    parse_ints,
    respond_surface,
    run_surface,
    user_or_none,
)
from moodboard.surfaces import SurfaceResult
from moodboard.surfaces.visual import COMPOSED, found_objects, image_category
from moodboard.understand.threads import model_thread

router = APIRouter(tags=["surfaces"])


def _crop(crop: str | None) -> tuple[int, int, int, int] | None:
    """``x,y,w,h`` in pixels of the upload (ASCII digits), or None."""
    if crop is None or not crop.strip():
        return None
    x, y, w, h = parse_ints(crop, "crop", 4, "x,y,w,h such as 10,20,200,300")
    return x, y, w, h


def _text(text: str | None) -> str | None:
    """The refining words, or None; text without a letter or digit is refused."""
    if text is None or not text.strip():
        return None
    if not any(c.isalnum() for c in text):
        raise InputError(
            f"The 'text' parameter must hold a word (e.g. 'in red'). Got {text[:40]!r} instead."
        )
    return text.strip()


def _composed(explain: bool) -> Any:
    """The page's ``query`` key of a composed query (the words, what they name, the text's
    weight; the parse too with ``explain``); none for a photo alone."""

    def extra(res: SurfaceResult) -> dict[str, Any] | None:
        ctx = res.prepared.context if res.prepared is not None else {}
        if COMPOSED not in ctx:
            return None
        query = dict(ctx[COMPOSED])
        if explain:
            query["parsed"] = ctx["parsed"].model_dump(mode="json")
        return {"query": query}

    return extra


_SLOTS_LOCK = threading.Lock()


def _decode_slots(request: Request) -> threading.BoundedSemaphore:
    """The app's bound on concurrent image decodes (``serve.max_concurrent_decodes``)."""
    state = request.app.state
    with _SLOTS_LOCK:
        slots = getattr(state, "decode_slots", None)
        if slots is None:
            slots = state.decode_slots = threading.BoundedSemaphore(
                state.settings.serve.max_concurrent_decodes
            )
    return slots


async def _take(slots: threading.BoundedSemaphore, wait_s: float) -> bool:
    """A decode slot within ``wait_s`` seconds, waited for without blocking the event loop
    (polled every 5 ms while every slot is taken; a cancelled wait holds none)."""
    deadline = time.monotonic() + wait_s
    while not slots.acquire(blocking=False):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.005)
    return True


@router.post("/visual-search", name="visual")
async def visual_search(
    request: Request,
    image: Annotated[
        UploadFile, File(description="A JPEG, PNG or WebP photo (serve.max_image_pixels).")
    ],
    crop: Annotated[
        str | None, Form(max_length=100, description="x,y,w,h in pixels of the image.")
    ] = None,
    category: Annotated[str | None, Form(max_length=200)] = None,
    text: Annotated[
        str | None,
        Form(max_length=200, description='Words that refine the photo ("in red", "for men").'),
    ] = None,
    k: Annotated[int, Form()] = 24,
    user: Annotated[str | None, Form(max_length=200)] = None,
    explain: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Products that look like a photo (or the cropped part of it).

    An ``async`` route: the page is made and logged on the model thread (decode, detect,
    embed, retrieve, respond), with no pool thread in between.
    """
    engine = engine_of(request)
    k = check_k(request, k)
    limit = int(request.app.state.settings.serve.max_upload_mb * 2**20)
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"The upload is over the {limit / 2**20:g} MB limit.")
    if not data:
        raise InputError("The 'image' upload is empty: send a JPEG, PNG or WebP photo.")
    f = item_filter(engine, category=category)
    box = _crop(crop)
    query = _text(text)
    user = user_or_none(user)
    arms = arms_of(request, user)  # before a slot is taken: nothing may fail between the two
    serve = request.app.state.settings.serve
    slots = _decode_slots(request)
    if not await _take(slots, serve.decode_wait_s):
        raise HTTPException(
            503,
            f"{serve.max_concurrent_decodes} images are being decoded already "
            "(serve.max_concurrent_decodes): retry in a second.",
            headers={"Retry-After": "1"},
        )
    p = PageParams(k, 0, user, explain, arms, time.perf_counter())

    def page() -> JSONResponse:
        try:
            req, res = run_surface(
                engine, "visual", p, image=data, crop=box, item_filter=f, query=query
            )
        finally:
            slots.release()
        return respond_surface(request, engine, req, res, p, extra=_extras(engine, p))

    return await model_thread().call(page)


def _objects_of(engine: Engine, p: PageParams) -> Callable[[SurfaceResult], dict[str, Any]]:
    """The page's ``objects`` (and, with explain, ``image_category``) of a result."""
    cards = cards_of(engine)

    def extra(res: SurfaceResult) -> dict[str, Any]:
        objects = []
        for obj in found_objects(res):
            items = obj.items if obj.items is not None else Candidates.empty()
            row = build_page(
                cards, items, surface="visual", request_id="", cursor=0, k=max(len(items), 1)
            )
            entry: dict[str, Any] = {
                "box": list(obj.box),
                "category": obj.guess.category if obj.guess else None,
                "confidence": round(obj.guess.confidence, 4) if obj.guess else None,
                "items": row["items"],
            }
            if p.explain:
                entry["objectness"] = round(obj.score, 4)
                entry["applied"] = obj.guess.applied if obj.guess else None
            objects.append(entry)
        out: dict[str, Any] = {"objects": objects}
        guess = image_category(res)
        if p.explain:
            out["image_category"] = guess.as_dict() if guess else None
        return out

    return extra


def _extras(engine: Engine, p: PageParams) -> Callable[[SurfaceResult], dict[str, Any]]:
    """The page's ``objects`` (with explain, ``image_category``) and, for a composed query,
    its ``query``."""
    objects, composed = _objects_of(engine, p), _composed(p.explain)

    def extra(res: SurfaceResult) -> dict[str, Any]:
        return objects(res) | (composed(res) or {})

    return extra
