"""Quarantine: rejected rows go to ``DIR/quarantine/<kind>-<timestamp>.jsonl`` with a reason.

Each line holds the original row's fields plus ``_reason`` (what to fix), ``_row`` (its row
number in the file) and ``_file``; a line that did not parse keeps its text in ``_raw``. Fix
the rows and ingest the quarantine file itself: moodboard ignores columns starting with ``_``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class Quarantine:
    """A lazily created quarantine file.

    Parameters
    ----------
    folder
        The workspace's quarantine folder.
    kind
        ``"catalog"`` or ``"events"``, the file name's prefix.
    source
        The input file the rows came from.
    """

    def __init__(self, folder: Path, kind: str, source: str) -> None:
        self.folder = Path(folder)
        self.kind = kind
        self.source = source
        self.count = 0
        self.path: Path | None = None
        self._fh: TextIO | None = None

    def _open(self) -> TextIO:
        if self._fh is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            self.path = self.folder / f"{self.kind}-{stamp}.jsonl"
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        return self._fh

    def add(self, row: dict[str, Any], reason: str, row_number: int) -> None:
        """Quarantine one parsed row."""
        rec = {"_reason": reason, "_row": row_number, "_file": self.source, **row}
        self._open().write(json.dumps(rec, default=str, ensure_ascii=False) + "\n")
        self.count += 1

    def add_raw(self, text: str, reason: str, row_number: int) -> None:
        """Quarantine one line that did not parse, keeping its text."""
        rec = {"_reason": reason, "_row": row_number, "_file": self.source, "_raw": text}
        self._open().write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.count += 1

    def flush(self) -> None:
        """Make what was written so far durable."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Flush and close the file."""
        if self._fh is not None:
            self.flush()
            self._fh.close()
            self._fh = None
