"""The FastAPI app factory: one router per surface, events, boards, ops and the web app.

``create_app(workspace)`` opens the workspace, loads the live artifact (and keeps watching
``CURRENT``), opens the event write-ahead log, and maps our errors to 4xx answers that say what
to fix. CPU-heavy routes are plain ``def`` routes, so they run in the thread pool and never
block the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moodboard.config import Settings, load_settings
from moodboard.errors import InputError, MoodboardError, NotBuiltError, NotFoundError
from moodboard.ingest import EventWAL, Workspace
from moodboard.serve.boards import BoardStore
from moodboard.serve.live import LiveEngine
from moodboard.serve.metrics import ServerMetrics
from moodboard.serve.registry import Engine

_log = logging.getLogger(__name__)

#: Routes whose body is an upload, checked against ``serve.max_upload_mb`` before reading.
UPLOAD_PATHS = ("/visual-search",)


def _status_of(exc: MoodboardError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, NotBuiltError):
        return 503
    if isinstance(exc, InputError):
        return 422
    return 400


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class ObserveMiddleware:
    """Pure ASGI middleware: refuses oversize uploads early, and times every request.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    metrics
        Where request counts and latencies go (labelled by route name).
    upload_limit
        Largest body, in bytes, accepted on ``UPLOAD_PATHS`` (by ``Content-Length``).
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, upload_limit: int) -> None:
        self.app = app
        self.metrics = metrics
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        if scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS:
            size = dict(scope["headers"]).get(b"content-length", b"")
            if size.isdigit() and int(size) > self.upload_limit:
                mb = self.upload_limit / 2**20
                detail = (
                    f"The upload is {int(size) / 2**20:.1f} MB; the limit is {mb:g} MB "
                    "(serve.max_upload_mb). Send a smaller image."
                )
                await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
                self.metrics.observe("upload_too_large", 413, time.perf_counter() - t0)
                return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            name = getattr(scope.get("route"), "name", None) or "unmatched"
            self.metrics.observe(name, status, time.perf_counter() - t0)


def create_app(workspace: Path | str, settings: Settings | None = None) -> FastAPI:
    """The moodboard HTTP app over a workspace.

    Parameters
    ----------
    workspace
        The workspace folder (``moodboard ingest`` and ``moodboard build`` fill it).
    settings
        Server settings (default: ``load_settings()``).
    """
    settings = settings or load_settings()
    ws = Workspace(workspace)
    metrics = ServerMetrics()

    def load(w: Workspace, version: str) -> Engine:
        engine = Engine.load(w, version, settings=settings)
        metrics.set_version(engine.version)
        metrics.reloads.inc()
        return engine

    live = LiveEngine(ws, load, settings.serve.watch_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Nested starts of the same app (test clients) share one WAL and one watcher.
        app.state.starts = getattr(app.state, "starts", 0) + 1
        if app.state.starts == 1:
            ws.init()
            app.state.wal = EventWAL(ws, limits=settings.ingest).open()
            app.state.boards = BoardStore(ws)
            live.start()
            _log.info("serving %s (artifact %s)", ws.root, live.version)
        try:
            yield
        finally:
            app.state.starts -= 1
            if app.state.starts == 0:
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

    @app.exception_handler(MoodboardError)
    async def _moodboard_error(request: Request, exc: MoodboardError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    app.add_middleware(
        ObserveMiddleware,
        metrics=metrics,
        upload_limit=int(settings.serve.max_upload_mb * 2**20),
    )

    from moodboard.serve.routes import catalog, feed, ops, surfaces

    app.include_router(surfaces.router)
    app.include_router(feed.router)
    app.include_router(catalog.router)
    app.include_router(ops.router)
    from moodboard.serve import web

    web.mount_static(app)
    app.include_router(web.router)
    return app
