"""The exceptions moodboard raises: one root and a few children."""

from __future__ import annotations


class MoodboardError(Exception):
    """Root of every error moodboard raises on purpose."""


class ConfigError(MoodboardError, ValueError):
    """A parameter or a config value is invalid; the message says what to change."""


class InputError(MoodboardError):
    """An input file or request cannot be used at all (missing, unreadable, wrong shape)."""


class NotFittedError(MoodboardError, RuntimeError):
    """A component was used before ``fit``."""


class NotFoundError(MoodboardError, KeyError):
    """An id that is not in the workspace or the artifact."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(MoodboardError, FileNotFoundError):
    """A public dataset is not where ``MOODBOARD_DATASETS`` says it should be."""


class NotBuiltError(MoodboardError):
    """A capability that this version of moodboard does not have yet."""


class ServerFaultError(MoodboardError):
    """The server cannot do this right now; not the client's mistake, so the client retries.

    Parameters
    ----------
    message
        What failed and what the operator can do about it.
    retry_after_s
        When a retry may succeed, in seconds (the HTTP ``Retry-After`` header); default the
        class's ``retry_after_s``.
    """

    #: Seconds a client should wait before retrying (``Retry-After``).
    retry_after_s: int = 1

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        if retry_after_s is not None:
            self.retry_after_s = max(1, round(retry_after_s))


class ServerBusyError(ServerFaultError, OSError):
    """A transient fault: a resource is held elsewhere (the workspace database by another
    process) or the server is starting or stopping. HTTP 503 with ``Retry-After``.

    Also an ``OSError``, so code that retries I/O faults (WAL compaction) retries it.
    """


class StorageFullError(ServerFaultError, OSError):
    """Data could not be written to disk (disk full, quota, I/O error); nothing was stored.
    HTTP 507 with ``Retry-After``.

    Also an ``OSError``, so code that retries I/O faults (WAL compaction) retries it.
    """

    retry_after_s = 30


class ArtifactLoadError(ServerFaultError):
    """The artifact version ``CURRENT`` names cannot be loaded; the previous version keeps
    serving. HTTP 503 with ``Retry-After`` (the time until the server tries it again)."""

    retry_after_s = 60
