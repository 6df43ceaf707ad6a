"""What every route shares: the live engine, paging, filters, impressions."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from moodboard.data import Candidates, ItemFilter, StageTiming, new_request_id
from moodboard.data import Request as SurfaceRequest
from moodboard.errors import InputError, NotFoundError
from moodboard.experiment.assign import NONE, Assignment
from moodboard.serve.dropped import DroppedImpressions
from moodboard.serve.experiments import run_surface_for, surfaces_for
from moodboard.serve.pages import ItemCards, build_page, page_impressions
from moodboard.serve.registry import Engine
from moodboard.surfaces import SurfaceResult
from moodboard.surfaces.modules import with_modules
from moodboard.understand.threads import model_thread

_log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"

#: A product id in a path (may hold "/": routes declare it ``{item_id:path}``).
ItemId = Annotated[str, Path(min_length=1, max_length=500, description="A product id.")]
#: A category in a query.
Category = Annotated[str | None, Query(max_length=300, description="A category to keep.")]
#: ``filter=attribute:value``, repeatable.
Filters = Annotated[
    list[str] | None,
    Query(alias="filter", max_length=20, description="attribute:value, may repeat (<= 20)."),
]


def engine_of(request: Request) -> Engine:
    """The live engine (503 before the first build)."""
    return request.app.state.live.engine


def check_k(request: Request, k: int) -> int:
    """``k`` within ``1..serve.max_k``.

    Raises
    ------
    InputError
        If it is out of range.
    """
    top = request.app.state.settings.serve.max_k
    if not 1 <= k <= top:
        raise InputError(f"The 'k' parameter must be an int in 1..{top}. Got {k} instead.")
    return k


#: A cursor or a crop number: ASCII digits only (``str.isdigit`` also takes "²"), bounded.
_DIGITS = re.compile(r"[0-9]{1,9}")


def _shown(value: str, limit: int = 40) -> str:
    """``value`` for an error message, cut to ``limit`` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def parse_cursor(cursor: str | None, max_offset: int) -> int:
    """The offset a ``next_cursor`` encodes, at most ``max_offset`` (``serve.max_offset``).

    Raises
    ------
    InputError
        If it is not one we issued (ASCII digits), or asks for a page deeper than
        ``max_offset`` items.
    """
    if cursor is None or cursor == "":
        return 0
    if not _DIGITS.fullmatch(cursor):
        raise InputError(
            f"The 'cursor' parameter must be a next_cursor value from a previous page (a "
            f"non-negative integer of ASCII digits). Got {_shown(cursor)} instead."
        )
    offset = int(cursor)
    if offset > max_offset:
        raise InputError(
            f"The 'cursor' parameter must be at most {max_offset} (serve.max_offset): pages "
            f"deeper than that are not served; refine the query instead. Got {offset} instead."
        )
    return offset


def parse_ints(value: str, name: str, n: int, example: str) -> tuple[int, ...]:
    """``n`` comma-separated integers of ASCII digits (an optional leading ``-``), bounded.

    Raises
    ------
    InputError
        If ``value`` is not exactly that.
    """
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != n or not all(_DIGITS.fullmatch(p.removeprefix("-")) for p in parts):
        raise InputError(
            f"The {name!r} field must be {n} integers of at most 9 ASCII digits, separated by "
            f"commas (e.g. {example}). Got {_shown(value)} instead."
        )
    return tuple(int(p) for p in parts)


def user_or_none(user: str | None) -> str | None:
    """The shopper's id, or None (anonymous) when it is missing or only whitespace."""
    if user is None or not user.strip():
        return None
    return user


def item_index(engine: Engine, item_id: str) -> int:
    """The internal index of an item id.

    Raises
    ------
    NotFoundError
        If the live catalog does not have it.
    """
    idx = engine.catalog.ids.indices([item_id], missing=-1)
    if idx[0] < 0:
        raise NotFoundError(f"No product with id {item_id!r} in the live catalog.")
    return int(idx[0])


def item_filter(
    engine: Engine,
    price_min: float | None = None,
    price_max: float | None = None,
    category: str | None = None,
    filters: list[str] | None = None,
) -> ItemFilter | None:
    """An ``ItemFilter`` from query parameters (``filter=attribute:value`` may repeat).

    Raises
    ------
    InputError
        If a filter is malformed or names an attribute the catalog does not have.
    """
    attrs: dict[str, list[str]] = {}
    if category:
        attrs["category"] = [category]
    for f in filters or []:
        if len(f) > 300:
            raise InputError(
                f"The 'filter' parameter must be at most 300 characters. Got {len(f)} instead."
            )
        name, sep, value = f.partition(":")
        if not sep or not name or not value:
            raise InputError(
                f"The 'filter' parameter must look like attribute:value (e.g. "
                f"baseColour:Red). Got {f!r} instead."
            )
        if name != "category" and name not in engine.catalog.attributes:
            known = ", ".join(["category", *sorted(engine.catalog.attributes)])
            raise InputError(
                f"The catalog has no attribute {name!r} to filter on. Attributes: {known}."
            )
        attrs.setdefault(name, []).append(value)
    if price_min is not None and price_max is not None and price_min > price_max:
        raise InputError(
            f"price_min must be <= price_max. Got {price_min:g} > {price_max:g} instead."
        )
    f = ItemFilter(
        price_min=price_min,
        price_max=price_max,
        attributes={a: tuple(v) for a, v in attrs.items()},
    )
    return None if f.is_empty() else f


def respond(
    request: Request,
    engine: Engine,
    cand: Candidates,
    p: PageParams,
    *,
    surface: str,
    timings_ms: dict[str, float] | None = None,
    query: str | None = None,
    features: Any = None,
    extra: dict[str, Any] | None = None,
    stages: tuple[StageTiming, ...] = (),
    request_id: str | None = None,
    modules: tuple[Any, ...] = (),
    arms: dict[str, str] | None = None,
) -> JSONResponse:
    """The page JSON, logged as impressions (``modules``: the candidate rows the page's
    ``module`` column indexes, if it has one; ``arms``: the experiment arms it was served,
    default the page parameters'), each with the page's ``latency_ms`` in its ``props``."""
    page = build_page(
        cards_of(engine),
        cand,
        surface=surface,
        request_id=request_id or new_request_id(),
        cursor=p.start,
        k=p.k,
        explain=p.explain,
        timings_ms=timings_ms,
        features=features,
        stages=[st.model_dump() for st in stages],
        modules=modules,
    )
    page["artifact"] = engine.version
    arms = p.assignment.arms if arms is None else arms
    if arms:
        page["arms"] = arms
    if extra:
        page.update(extra)
    latency_ms = (time.perf_counter() - p.started) * 1000 if p.started else None
    rows = page_impressions(
        page, cand, p.user or ANONYMOUS, query, arms=arms, latency_ms=latency_ms
    )
    if rows:
        log_impressions(request, rows)
    return JSONResponse(page)


def run_surface(
    engine: Engine, name: str, p: PageParams, modules: bool | None = None, **fields: Any
) -> tuple[SurfaceRequest, SurfaceResult]:
    """Run surface ``name`` of the live engine for page ``p`` on the model thread
    (``understand.threads.ModelThread``); ``fields`` are the surface
    request's own (``query``, ``item_id``, ``items``, ``image``, ``item_filter``, ...);
    ``modules`` turns the feed's rows of modules on or off (None: as configured).

    Raises
    ------
    NotFoundError
        If no surface of that name is declared, or the request names what the catalog lacks.
    """
    surfaces, assignment = surfaces_for(engine, p.assignment)
    surface = surfaces.get(name)
    if surface is None:
        known = ", ".join(sorted(engine.surfaces))
        raise NotFoundError(f"No surface named {name!r} is declared. Surfaces: {known}.")
    if modules is not None:
        surface = with_modules(surface, modules)
    req = SurfaceRequest(
        surface=name,
        user_id=p.user,
        k=p.k,
        cursor=p.start,
        explain=p.explain,
        arms=assignment.arms,
        **fields,
    )
    return req, model_thread().run(run_surface_for, engine, surface, assignment, req)


def respond_surface(
    request: Request,
    engine: Engine,
    req: SurfaceRequest,
    res: SurfaceResult,
    p: PageParams,
    *,
    logged_query: str | None = None,
    features: Any = None,
    extra: Any = None,
) -> JSONResponse:
    """The page of a surface's result, logged as impressions; ``features`` and ``extra``
    may be functions of the result (the explain features' function, the page's extra keys).
    """
    return respond(
        request,
        engine,
        res.candidates,
        p,
        surface=req.surface,
        timings_ms=res.timings_ms,
        query=logged_query,
        features=features(res) if features is not None else None,
        extra=extra(res) if callable(extra) else extra,
        stages=res.stages,
        request_id=req.request_id,
        modules=tuple(res.prepared.context.get("modules", ())) if res.prepared else (),
        arms=req.arms,
    )


def serve_surface(
    request: Request,
    engine: Engine,
    name: str,
    p: PageParams,
    *,
    logged_query: str | None = None,
    features: Any = None,
    extra: Any = None,
    **fields: Any,
) -> JSONResponse:
    """``run_surface`` then ``respond_surface``.

    Raises
    ------
    NotFoundError
        If no surface of that name is declared, or the request names what the catalog lacks.
    """
    req, res = run_surface(engine, name, p, **fields)
    return respond_surface(
        request, engine, req, res, p, logged_query=logged_query, features=features, extra=extra
    )


async def serve_surface_async(
    request: Request, engine: Engine, name: str, p: PageParams, **kwargs: Any
) -> JSONResponse:
    """``serve_surface`` for an ``async`` route: the page is made and logged on the model
    thread (``understand.threads.ModelThread``) while the event loop waits for it."""
    return await model_thread().call(serve_surface, request, engine, name, p, **kwargs)


def log_impressions(request: Request, rows: list[dict[str, Any]]) -> None:
    """Log a page's impressions; a failure is logged and counted, never fails the page."""
    try:
        request.app.state.wal.log(rows)
    except Exception as exc:  # the page is served anyway; the loss is counted
        _log.error("dropped %d impressions of a served page: %s", len(rows), exc)
        request.app.state.metrics.impressions_dropped.inc(len(rows))
        dropped = getattr(request.app.state, "dropped", None)
        if dropped is None:
            dropped = request.app.state.dropped = DroppedImpressions(request.app.state.ws.root)
        dropped.add(len(rows))


def cards_of(engine: Engine) -> ItemCards:
    """The engine's memo of item fields, made on first use."""
    cards = engine.__dict__.get("_cards")
    if cards is None:
        cards = engine.__dict__["_cards"] = ItemCards(engine.catalog)
    return cards


def exclude_of(engine: Engine, ids: list[str]) -> np.ndarray:
    """Internal indices of known ids (unknown ones are ignored)."""
    idx = engine.catalog.ids.indices(ids, missing=-1)
    return idx[idx >= 0].astype(np.int32)


@dataclass(frozen=True)
class PageParams:
    """The paging parameters every surface takes, checked."""

    k: int
    start: int
    user: str | None
    explain: bool
    #: The shopper's experiment arms and their overrides.
    assignment: Assignment = NONE
    #: ``time.perf_counter()`` when the request's parameters were read (0: unknown).
    started: float = field(default=0.0, compare=False)


async def page_params(
    request: Request,
    k: Annotated[int, Query(description="Items per page (1..serve.max_k).")] = 24,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page (<= max_offset).")
    ] = None,
    user: Annotated[
        str | None,
        Query(max_length=200, description="The shopper's id (logged with the page)."),
    ] = None,
    explain: Annotated[bool, Query(description="Add sources, scores, features, timings.")] = False,
) -> PageParams:
    """A FastAPI dependency: ``k``, ``cursor``, ``user`` and ``explain`` of a page request
    (``async``: it only parses, so FastAPI runs it on the event loop, not a pool thread)."""
    started = time.perf_counter()
    start = parse_cursor(cursor, request.app.state.settings.serve.max_offset)
    user = user_or_none(user)
    return PageParams(check_k(request, k), start, user, explain, arms_of(request, user), started)


def arms_of(request: Request, user: str | None) -> Assignment:
    """The experiment arms of ``user`` now (none for an anonymous shopper)."""
    experiments = getattr(request.app.state, "experiments", None)
    return NONE if experiments is None else experiments(user, datetime.now(UTC))


def for_user(request: Request, p: PageParams, user: str) -> PageParams:
    """``p`` for the shopper a route names in its path (their arms, not the ``user``
    parameter's)."""
    arms = NONE if user == ANONYMOUS else arms_of(request, user)
    return replace(p, user=user, assignment=arms)


#: A route's paging parameters, checked (``k``, ``cursor``, ``user``, ``explain``).
Paged = Annotated[PageParams, Depends(page_params)]
