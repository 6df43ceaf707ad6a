"""Impressions a server could not log: counted in ``/metrics`` and in a workspace file.

A page is served even when logging its impressions fails (a full disk, a closed WAL): the
shopper sees the page, the error is logged, and the count of lost impression events goes to
``moodboard_impressions_dropped_total`` and to ``impressions_dropped.json`` in the workspace,
which ``moodboard status`` reads (it survives restarts; lost impressions bias every experiment
on the pages they belonged to, so an operator must see them).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

_log = logging.getLogger(__name__)

#: The counter file, in the workspace folder.
DROPPED_FILE = "impressions_dropped.json"


def dropped_impressions(root: Path | str) -> int:
    """The impression events servers of this workspace failed to log (0 when none)."""
    try:
        data = json.loads((Path(root) / DROPPED_FILE).read_text())
        return int(data.get("impressions_dropped", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


class DroppedImpressions:
    """Counts impression events a server dropped, in the workspace's counter file.

    Parameters
    ----------
    root
        The workspace folder.
    """

    def __init__(self, root: Path | str) -> None:
        self.path = Path(root) / DROPPED_FILE
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        """Add ``n`` dropped events to the file (atomically replaced; errors are logged)."""
        with self._lock:
            total = dropped_impressions(self.path.parent) + n
            tmp = self.path.with_name(f".{DROPPED_FILE}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps({"impressions_dropped": total}))
                os.replace(tmp, self.path)
            except OSError as exc:
                _log.error("cannot update %s: %s", self.path, exc)
