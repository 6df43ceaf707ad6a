"""The live engine: the artifact version ``CURRENT`` names, swapped without a restart.

A request takes one reference to the engine when it starts and keeps it to the end, so a swap
never changes the engine under a running request, and the old version is dropped only when its
last request ends. ``reload`` loads the new version completely before the swap: while it loads,
requests keep being served by the old one. A watcher thread polls ``CURRENT`` and reloads when
it names a new version (``moodboard build`` flips it atomically).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from moodboard.errors import NotBuiltError
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine

_log = logging.getLogger(__name__)

Loader = Callable[[Workspace, str], Engine]


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
    """

    def __init__(self, ws: Workspace, loader: Loader, watch_interval_s: float = 2.0) -> None:
        self.ws = ws
        self.loader = loader
        self.watch_interval_s = watch_interval_s
        self._engine: Engine | None = None
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.reloads = 0

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
        """Load the live version (if any) and start the watcher."""
        self._stop.clear()
        if self.ws.current_artifact() is not None:
            self.reload()
        if self.watch_interval_s > 0:
            self._watcher = threading.Thread(
                target=self._watch, name="moodboard-artifact-watch", daemon=True
            )
            self._watcher.start()
        return self

    def stop(self) -> None:
        """Stop the watcher."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def reload(self) -> str | None:
        """Load the version ``CURRENT`` names, if it is not live yet; returns the live version.

        Raises
        ------
        MoodboardError
            If the version cannot be loaded; the old version stays live.
        """
        with self._load_lock:
            version = self.ws.current_artifact()
            if version is None or version == self.version:
                return self.version
            engine = self.loader(self.ws, version)
            old, self._engine = self.version, engine
            self.reloads += 1
            _log.info("artifact %s is live (was %s)", version, old)
            return version

    def _watch(self) -> None:
        while not self._stop.wait(self.watch_interval_s):
            try:
                if self.ws.current_artifact() != self.version:
                    self.reload()
            except Exception:  # the old version keeps serving; the next poll retries
                _log.exception("could not load the new artifact; keeping %s", self.version)
