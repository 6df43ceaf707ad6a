"""``GET /autocomplete``: completions of what the shopper typed in the search box.

An ``async`` route that answers on the event loop: a completion is a few binary searches and
one small LightGBM prediction (well under a millisecond), cheaper than a hop to a thread.
Autocomplete requests are not logged as impressions; each answer has its ``request_id``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from moodboard.data import new_request_id
from moodboard.errors import InputError
from moodboard.serve.routes.common import engine_of, user_or_none
from moodboard.surfaces.autocomplete_candidates import interests_of

router = APIRouter(tags=["surfaces"])

#: The most characters of ``q`` read at all (``autocomplete.max_prefix_chars`` is the limit
#: that applies; this one bounds the work of telling the client so).
_MAX_Q = 10_000


@router.get("/autocomplete", name="autocomplete")
async def autocomplete(
    request: Request,
    q: Annotated[
        str, Query(max_length=_MAX_Q, description="The prefix typed (blank: no completions).")
    ] = "",
    user: Annotated[
        str | None, Query(max_length=200, description="The shopper's id (their interests).")
    ] = None,
    k: Annotated[int | None, Query(description="Completions (1..autocomplete.max_k).")] = None,
) -> JSONResponse:
    """Completions of ``q``: ``{"request_id", "completions": [{"text", "score"}]}``, best
    first; an unknown user is served as an anonymous one."""
    cfg = request.app.state.settings.autocomplete
    if k is not None and not 1 <= k <= cfg.max_k:
        raise InputError(f"The 'k' parameter must be an int in 1..{cfg.max_k}. Got {k} instead.")
    if len(q) > cfg.max_prefix_chars:
        raise InputError(
            f"The 'q' parameter must be at most {cfg.max_prefix_chars} characters "
            f"(autocomplete.max_prefix_chars): send the start of the query. Got {len(q)} instead."
        )
    engine = engine_of(request)
    body: dict[str, object] = {"request_id": new_request_id(), "completions": []}
    if engine.autocomplete is None or not q.strip():
        return JSONResponse(body)
    shopper = user_or_none(user)
    interests = None
    if shopper is not None:
        history = engine.history(shopper)
        interests = interests_of([engine.catalog.category[i] for i in history[-50:]]) or None
    found = engine.autocomplete.complete(q, k, interests)
    body["completions"] = [{"text": c.text, "score": c.score} for c in found]
    return JSONResponse(body)
