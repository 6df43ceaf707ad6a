"""How errors become HTTP answers: client mistakes 4xx, server faults 503/507 with Retry-After.

A client retries a 503 or 507 after ``Retry-After`` seconds and fixes the request on a 4xx, so
a fault of the server (a full disk, the workspace database held by another process, an artifact
that fails to load) must never look like the client's mistake. A bug stays a 500.
"""

from __future__ import annotations

import errno
import logging

import duckdb
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from moodboard.errors import (
    ConfigError,
    InputError,
    MoodboardError,
    NotBuiltError,
    NotFoundError,
    ServerBusyError,
    ServerFaultError,
    StorageFullError,
)

_log = logging.getLogger(__name__)

#: errno values of a disk that cannot take more data: 507 Insufficient Storage.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: errno values of a transient fault of the machine: 503.
_TRANSIENT = frozenset(
    {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EROFS}
)
#: DuckDB messages of a file held by another process, and of a full disk.
_DB_HELD = ("Could not set lock on file", "Conflicting lock")
_DB_FULL = ("No space left on device", "Disk quota exceeded")


def status_of(exc: MoodboardError) -> int:
    """The HTTP status of one of our errors."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StorageFullError):
        return 507
    if isinstance(exc, ServerFaultError | NotBuiltError):
        return 503
    if isinstance(exc, InputError):
        return 422
    if isinstance(exc, ConfigError):
        return 400
    return 500  # NotFittedError and other faults of the code: a bug


def fault_of(exc: Exception) -> ServerFaultError | None:
    """The server fault a foreign exception stands for (disk full, file held), or None."""
    if isinstance(exc, OSError) and exc.errno in _FULL:
        return StorageFullError(
            f"The server could not store data ({exc.strerror}); nothing was stored. Retry "
            "later (the operator frees disk space)."
        )
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT:
        return ServerBusyError(f"The server hit a transient fault ({exc.strerror}); retry.")
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        if any(s in text for s in _DB_FULL):
            return StorageFullError(
                "The workspace database could not be written: the disk is full. Nothing was "
                "stored; retry later."
            )
        if any(s in text for s in _DB_HELD):
            return ServerBusyError(
                "The workspace database is held by another process (a `moodboard ingest`, "
                "`build` or `status` run); retry in a moment."
            )
    return None


def error_response(exc: MoodboardError) -> JSONResponse:
    """``{"detail": ...}`` with the status of ``exc`` and, for a server fault, ``Retry-After``."""
    status = status_of(exc)
    headers = None
    if isinstance(exc, ServerFaultError):
        headers = {"Retry-After": str(exc.retry_after_s)}
    if status >= 500:
        _log.warning("answered %d: %s", status, exc, exc_info=status == 500)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers of our errors and of the foreign faults ``fault_of`` knows."""

    @app.exception_handler(MoodboardError)
    async def _moodboard_error(request: Request, exc: MoodboardError) -> JSONResponse:
        return error_response(exc)

    async def _foreign(request: Request, exc: Exception) -> JSONResponse:
        fault = fault_of(exc)
        if fault is None:
            raise exc  # a bug: the server's 500
        _log.warning("%s %s: %s", request.method, request.url.path, exc)
        return error_response(fault)

    app.add_exception_handler(OSError, _foreign)
    app.add_exception_handler(duckdb.Error, _foreign)
