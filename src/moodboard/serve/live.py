"""The live engine: the artifact version ``CURRENT`` names, swapped without a restart.

A request takes one reference to the engine when it starts and keeps it to the end, so a swap
never changes the engine under a running request, and the old version is dropped only when its
last request ends. ``reload`` loads the new version completely before the swap: while it loads,
requests keep being served by the old one. A watcher thread polls ``CURRENT`` and reloads when
it names a new version (``moodboard build`` flips it atomically).

A version that fails to load (corrupt files, a ``CURRENT`` that names no version) is remembered:
the old version keeps serving, and that version is not tried again until ``CURRENT`` names
another one or ``backoff_s`` has passed, so a broken build costs one load, not one every poll.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from moodboard.build.artifact import hold_version
from moodboard.errors import ArtifactLoadError, MoodboardError, NotBuiltError
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.understand.threads import in_own_thread

_log = logging.getLogger(__name__)

Loader = Callable[[Workspace, str], Engine]


@dataclass(frozen=True)
class Swap:
    """What one ``reload`` did: the version live before it and the one live after it."""

    previous: str | None
    version: str | None

    @property
    def swapped(self) -> bool:
        """Whether a new version went live."""
        return self.version != self.previous


@dataclass(frozen=True)
class _Failure:
    version: str
    reason: str
    until: float  # time.monotonic() after which the version may be tried again


def _reason(exc: BaseException, folder: str) -> str:
    """Why a load failed, without echoing file contents (the log has the traceback)."""
    if isinstance(exc, MoodboardError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    elif isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{type(exc).__name__} ({exc.strerror or 'I/O error'}){where}"
    else:
        text = f"{type(exc).__name__} (a file of the version is corrupt; see the server log)"
    return text.replace(folder, "<workspace>")[:300]


def _settle_heap() -> None:
    """Collect what the swap freed, then move every object left (the live engine's millions:
    catalog, histories, indexes) out of the collector's sight (``gc.freeze``).

    Without it each full collection walks the whole engine: a 270 ms pause on the demo catalog,
    the p99 of ``/search``. Frozen objects are still freed by reference counting when the next
    swap drops them; the unfreeze here lets the collector find their cycles once.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class LiveEngine:
    """Holds the serving engine and swaps it atomically.

    Parameters
    ----------
    ws
        The workspace.
    loader
        ``(workspace, version) -> Engine``.
    watch_interval_s
        How often the watcher checks ``CURRENT``; 0 disables the watcher.
    backoff_s
        How long a version that failed to load is not tried again (unless ``CURRENT`` changes).
    """

    def __init__(
        self,
        ws: Workspace,
        loader: Loader,
        watch_interval_s: float = 2.0,
        backoff_s: float = 60.0,
    ) -> None:
        self.ws = ws
        self.loader = loader
        self.watch_interval_s = watch_interval_s
        self.backoff_s = backoff_s
        self._engine: Engine | None = None
        self._load_lock = threading.Lock()
        self._failed: _Failure | None = None
        self._held: int | None = None  # fd whose lock keeps builds from pruning our version
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.reloads = 0
        self.failed_loads = 0

    @property
    def engine(self) -> Engine:
        """The live engine.

        Raises
        ------
        NotBuiltError
            If no artifact has been built yet.
        """
        engine = self._engine
        if engine is None:
            raise NotBuiltError(
                f"No artifact is live in {self.ws.root}: run `moodboard build` and the server "
                "picks it up without a restart."
            )
        return engine

    @property
    def version(self) -> str | None:
        """The live artifact version (None before the first build)."""
        engine = self._engine
        return engine.version if engine is not None else None

    def start(self) -> LiveEngine:
        """Load the live version (if any; a failure is logged and retried) and start the watcher."""
        self._stop.clear()
        if self.ws.current_artifact() is not None:
            # A failure is logged by reload; the server starts and /healthz says no artifact is
            # live until CURRENT names a version that loads.
            with contextlib.suppress(ArtifactLoadError):
                self.reload()
        if self.watch_interval_s > 0:
            self._watcher = threading.Thread(
                target=self._watch, name="moodboard-artifact-watch", daemon=True
            )
            self._watcher.start()
        return self

    def stop(self) -> None:
        """Stop the watcher and let builds prune the served version."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._load_lock:
            self._hold(None)

    def _hold(self, engine: Engine | None) -> None:
        """Hold the served version's lock (``build.artifact.hold_version``), drop the old one."""
        old, self._held = self._held, None
        if engine is not None:
            try:
                self._held = hold_version(engine.path)
            except OSError as e:
                _log.warning("cannot mark %s as served (a build may prune it): %s", engine.path, e)
        if old is not None:
            os.close(old)

    def reload(self) -> Swap:
        """Load the version ``CURRENT`` names, if it is not live yet.

        Returns
        -------
        Swap
            The versions live before and after, read under the load lock.

        Raises
        ------
        ArtifactLoadError
            If that version fails to load now, or failed less than ``backoff_s`` ago and
            ``CURRENT`` still names it; the old version stays live.
        """
        with self._load_lock:
            before = self.version
            name = self.ws.current_artifact()
            if name is None or name == before:
                return Swap(before, before)
            now = time.monotonic()
            failed = self._failed
            if failed is not None and failed.version == name and now < failed.until:
                raise ArtifactLoadError(
                    self._failure_message(failed, before), retry_after_s=failed.until - now
                )
            try:
                self.ws.version_path(name)
                engine = in_own_thread(self.loader, self.ws, name)  # its torch threads end
            except Exception as e:
                failed = _Failure(name, _reason(e, str(self.ws.root)), now + self.backoff_s)
                self._failed = failed
                self.failed_loads += 1
                _log.exception(
                    "artifact %r named by CURRENT failed to load; keeping %s, next try in %gs",
                    name[:80],
                    before,
                    self.backoff_s,
                )
                raise ArtifactLoadError(
                    self._failure_message(failed, before), retry_after_s=self.backoff_s
                ) from e
            self._engine, self._failed = engine, None
            self._hold(engine)
            _settle_heap()
            self.reloads += 1
            _log.info("artifact %s is live (was %s)", name, before)
            return Swap(before, name)

    def _failure_message(self, failed: _Failure, live: str | None) -> str:
        keeps = f"Version {live} keeps serving" if live else "No version is live"
        return (
            f"The artifact version {failed.version[:80]!r} named by CURRENT failed to load: "
            f"{failed.reason}. {keeps}. Run `moodboard build` (or point CURRENT at a "
            f"good version); the server retries this one after {self.backoff_s:g} s."
        )

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_interval_s):
            try:
                if self.ws.current_artifact() != self.version:
                    self.reload()
            except ArtifactLoadError:
                pass  # logged once per failed load; the old version keeps serving
            except Exception:  # the old version keeps serving; the next poll retries
                _log.exception("could not load the new artifact; keeping %s", self.version)
