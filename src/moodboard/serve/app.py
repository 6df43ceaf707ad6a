"""The FastAPI app factory: one router per surface, events, boards, ops and the web app.

``create_app(workspace)`` opens the workspace, loads the live artifact (and keeps watching
``CURRENT``), opens the event write-ahead log, and maps errors to answers (``serve.faults``):
client mistakes to 4xx that say what to fix, server faults to 503/507 with ``Retry-After``.
CPU-heavy routes are plain ``def`` routes, so they run in the thread pool and never block the
event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moodboard.config import Settings, load_settings
from moodboard.errors import ConfigError
from moodboard.experiment.store import ExperimentStore
from moodboard.ingest import EventWAL, Workspace
from moodboard.serve import faults
from moodboard.serve.auth import Guard
from moodboard.serve.boards import BoardStore
from moodboard.serve.experiments import GuardrailJob, LiveExperiments
from moodboard.serve.keys import load_keys
from moodboard.serve.live import LiveEngine
from moodboard.serve.metrics import ServerMetrics
from moodboard.serve.registry import Engine
from moodboard.surfaces.recent import RecentActions, RecentConfig

_log = logging.getLogger(__name__)

#: Routes whose body is an upload, bounded by ``serve.max_upload_mb`` (others: ``max_body_kb``).
UPLOAD_PATHS = ("/visual-search",)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _human(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


class BodyTooLargeError(HTTPException):
    """A request body went over its route's limit (raised from ``receive`` as bytes arrive)."""


class ObserveMiddleware:
    """Pure ASGI middleware: bounds every request body, and times every request.

    A body is refused with 413 before the app runs when its ``Content-Length`` is over the
    route's limit, and otherwise as soon as the bytes received (chunked bodies included) go
    over it: the app's ``receive`` counts them and raises ``BodyTooLargeError``, which the
    app answers (or this middleware, when the app let it through).

    Parameters
    ----------
    app
        The wrapped ASGI app.
    metrics
        Where request counts and latencies go (labelled by route name).
    upload_limit
        Largest body, in bytes, of ``UPLOAD_PATHS`` (``serve.max_upload_mb``).
    body_limit
        Largest body, in bytes, of every other route (``serve.max_body_kb``).
    """

    def __init__(
        self, app: ASGIApp, metrics: ServerMetrics, upload_limit: int, body_limit: int
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.upload_limit = upload_limit
        self.body_limit = body_limit

    def _too_large(self, path: str, size: int | None) -> BodyTooLargeError:
        if path in UPLOAD_PATHS:
            limit = f"{_human(self.upload_limit)} (serve.max_upload_mb)"
            what = "Send a smaller image, or raise serve.max_upload_mb."
        else:
            limit = f"{_human(self.body_limit)} (serve.max_body_kb)"
            what = "Send a smaller body (e.g. fewer events a request), or raise serve.max_body_kb."
        got = (
            f"is over the limit of {limit}"
            if size is None
            else f"is {_human(size)}; the limit is {limit}"
        )
        # Closing the connection stops the client sending the rest (else the server drains it).
        return BodyTooLargeError(
            413,
            f"The request body {got}. {what}",
            headers={"Connection": "close"},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        limit = self.upload_limit if path in UPLOAD_PATHS else self.body_limit
        size = dict(scope["headers"]).get(b"content-length", b"")
        if size.isdigit() and int(size) > limit:
            exc = self._too_large(path, int(size))
            response = JSONResponse({"detail": exc.detail}, 413, headers=exc.headers)
            await response(scope, receive, send)
            self.metrics.observe("body_too_large", 413, time.perf_counter() - t0)
            return
        received = 0
        status = 500
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._too_large(path, None)
            return message

        async def send_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive_limited, send_status)
        except BodyTooLargeError as exc:  # the app did not answer it (e.g. a mounted app)
            if started:
                raise
            response = JSONResponse({"detail": exc.detail}, 413, headers=exc.headers)
            await response(scope, receive, send)
            status = 413
        finally:
            name = getattr(scope.get("route"), "name", None) or "unmatched"
            self.metrics.observe(name, status, time.perf_counter() - t0)


def use_arrow_pool(name: str) -> None:
    """Make ``name`` the process's default Arrow memory pool (``serve.arrow_memory_pool``;
    "default" keeps pyarrow's own).

    Raises
    ------
    ConfigError
        If this pyarrow build has no such pool (the message says what to set instead).
    """
    if name == "default":
        return
    import pyarrow as pa

    make = {
        "jemalloc": pa.jemalloc_memory_pool,
        "mimalloc": pa.mimalloc_memory_pool,
        "system": pa.system_memory_pool,
    }[name]
    try:
        pool = make()
    except NotImplementedError as e:
        raise ConfigError(
            f"serve.arrow_memory_pool = {name!r}: this pyarrow build has no {name} pool ({e}). "
            "Set it to 'system' or 'default'."
        ) from e
    pa.set_memory_pool(pool)


def create_app(workspace: Path | str, settings: Settings | None = None) -> FastAPI:
    """The moodboard HTTP app over a workspace.

    Parameters
    ----------
    workspace
        The workspace folder (``moodboard ingest`` and ``moodboard build`` fill it).
    settings
        Server settings (default: ``load_settings()``).

    Raises
    ------
    ConfigError
        If the workspace's keys file is unreadable (the message says how to fix it).
    """
    settings = settings or load_settings()
    use_arrow_pool(settings.serve.arrow_memory_pool)
    ws = Workspace(workspace, db_wait_s=settings.serve.db_wait_s)
    guard = Guard(load_keys(ws.root, settings.serve), settings.serve)
    metrics = ServerMetrics()
    recent = RecentActions(
        RecentConfig(per_user=settings.serve.recent_per_user, users=settings.serve.recent_users)
    )

    boards = BoardStore(ws)

    def load(w: Workspace, version: str) -> Engine:
        try:
            extra = {"recent": recent, "boards": boards.newest}
            engine = Engine.load(w, version, settings=settings, resources=extra)
            # the model and its ONNX session, before the freeze
            engine.text_encoder.encode(["warm up"])
        except Exception:
            metrics.load_failures.inc()
            raise
        metrics.set_version(engine.version)
        metrics.reloads.inc()
        return engine

    live = LiveEngine(
        ws, load, settings.serve.watch_interval_s, backoff_s=settings.serve.reload_backoff_s
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Nested starts of the same app (test clients) share one WAL and one watcher.
        app.state.starts = getattr(app.state, "starts", 0) + 1
        if app.state.starts == 1:
            ws.init()
            app.state.wal = EventWAL(ws, settings.ingest.wal, limits=settings.ingest).open()
            recent.add(app.state.wal.pending_events().to_pylist())  # accepted, not built yet
            app.state.boards = boards
            live.start()
            app.state.guardrails = GuardrailJob(ws, settings).start()
            _log.info("serving %s (artifact %s)", ws.root, live.version)
        try:
            yield
        finally:
            app.state.starts -= 1
            if app.state.starts == 0:
                app.state.guardrails.stop()
                live.stop()
                app.state.wal.close()

    app = FastAPI(
        title="moodboard",
        version="0.1.0",
        summary="Discovery for shopping catalogs: search, related, visual search, boards.",
        lifespan=lifespan,
    )
    app.state.ws = ws
    app.state.live = live
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.guard = guard
    app.state.recent = recent
    store = ExperimentStore(ws.root, settings.experiment.declared)
    app.state.experiments = LiveExperiments(store, settings)

    faults.install(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    app.add_middleware(
        ObserveMiddleware,
        metrics=metrics,
        upload_limit=int(settings.serve.max_upload_mb * 2**20),
        body_limit=settings.serve.max_body_kb * 1024,
    )
    if settings.serve.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.serve.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    from moodboard.serve.routes import (
        autocomplete,
        board,
        catalog,
        dashboard,
        dashboard_search,
        demo,
        feed,
        ops,
        popular,
        refinements,
        related,
        search,
        surfaces,
        visual,
    )

    for route in (search, popular, related, visual, board, feed, surfaces, refinements):
        app.include_router(route.router)
    app.include_router(catalog.router)
    app.include_router(autocomplete.router)
    app.include_router(ops.router)
    app.include_router(demo.router)
    app.include_router(dashboard.router)
    app.include_router(dashboard_search.router)
    from moodboard.serve import web

    web.mount_static(app)
    app.include_router(web.router)
    return app
