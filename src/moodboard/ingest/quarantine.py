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
    name
        A fixed file name (``<name>.jsonl``, appended to across runs) instead of
        ``<kind>-<timestamp>.jsonl``.
    max_bytes
        With ``name``: past this size the file is rotated, ``<name>.jsonl`` becoming
        ``<name>.1.jsonl`` (``.1`` the newest earlier file) ...
    keep
        ... keeping at most this many earlier files; the oldest is deleted.
    """

    def __init__(
        self,
        folder: Path,
        kind: str,
        source: str,
        *,
        name: str | None = None,
        max_bytes: int | None = None,
        keep: int = 0,
    ) -> None:
        self.folder = Path(folder)
        self.kind = kind
        self.source = source
        self.name = name
        self.max_bytes = max_bytes
        self.keep = keep
        self.count = 0
        self.path: Path | None = None
        self._fh: TextIO | None = None

    def _open(self) -> TextIO:
        if self._fh is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.name is not None:
                self.path = self.folder / f"{self.name}.jsonl"
            else:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                self.path = self.folder / f"{self.kind}-{stamp}.jsonl"
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        return self._fh

    def _write(self, line: str) -> None:
        fh = self._open()
        fh.write(line)
        self.count += 1
        if self.max_bytes is not None and fh.tell() >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        assert self.path is not None and self.name is not None
        self.close()
        old = [self.folder / f"{self.name}.{i}.jsonl" for i in range(1, self.keep + 1)]
        if old:
            old[-1].unlink(missing_ok=True)
            for newer, older in zip(old[-2::-1], old[:0:-1], strict=True):
                if newer.exists():
                    os.replace(newer, older)
            os.replace(self.path, old[0])
        else:
            self.path.unlink(missing_ok=True)

    def add(self, row: dict[str, Any], reason: str, row_number: int) -> None:
        """Quarantine one parsed row."""
        rec = {"_reason": reason, "_row": row_number, "_file": self.source, **row}
        self._write(json.dumps(rec, default=str, ensure_ascii=False) + "\n")

    def add_raw(self, text: str, reason: str, row_number: int) -> None:
        """Quarantine one line that did not parse, keeping its text."""
        rec = {"_reason": reason, "_row": row_number, "_file": self.source, "_raw": text}
        self._write(json.dumps(rec, ensure_ascii=False) + "\n")

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
