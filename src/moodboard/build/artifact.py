"""The versioned artifact: built hidden, durable before it goes live, old versions pruned.

``NewVersion`` is the folder a build writes into (``artifacts/.building-<version>``), deleted
if the build fails.

``publish`` fsyncs every file and folder of the finished build, renames it into
``artifacts/``, fsyncs that folder, and only then flips ``CURRENT``: after a power cut,
``CURRENT`` never names a version whose files are not on disk. It then keeps the newest
``keep`` versions, never deleting the version going live, the one that was live before it,
nor any version a server is serving: a server holds a shared ``flock`` on the ``manifest.json``
of the version it serves (``hold_version``), and pruning skips a version whose lock it cannot
take (``in_use``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moodboard.build.layout import BUILDING_PREFIX, MANIFEST_FILE
from moodboard.ingest import Workspace
from moodboard.ingest.eventlog import fsync_dir
from moodboard.ingest.workspace import VERSION_FORMAT, VERSION_PATTERN

_log = logging.getLogger(__name__)


def fsync_tree(folder: Path) -> int:
    """Fsync every file and folder under ``folder`` (files first, the folder itself last).

    Returns
    -------
    int
        How many files were fsynced.

    Raises
    ------
    OSError
        If a file cannot be opened or flushed.
    """
    files = 0
    for root, _dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(root) / name
            if path.is_symlink():
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            files += 1
        fsync_dir(Path(root))
    return files


def hold_version(folder: Path) -> int:
    """Mark a version as served by this process until the returned fd is closed.

    Raises
    ------
    OSError
        If the version has no readable ``manifest.json``.
    """
    fd = os.open(folder / MANIFEST_FILE, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        raise
    return fd


def in_use(folder: Path) -> bool:
    """Whether a process serves this version (holds its ``hold_version`` lock)."""
    try:
        fd = os.open(folder / MANIFEST_FILE, os.O_RDONLY)
    except OSError:
        return False  # no manifest: nobody can be serving it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases the lock just taken
    return False


def versions(ws: Workspace) -> list[str]:
    """The built versions in ``artifacts/``, oldest first (their names sort by build time)."""
    if not ws.artifacts_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in ws.artifacts_dir.iterdir()
        if VERSION_PATTERN.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
    )


def prune_versions(ws: Workspace, keep: int, protect: frozenset[str] = frozenset()) -> list[str]:
    """Delete all but the newest ``keep`` versions; ``CURRENT``'s, ``protect`` and every
    version a server serves stay.

    Returns
    -------
    list of str
        The deleted versions.
    """
    protect = protect | {v for v in (ws.current_artifact(),) if v}
    old = versions(ws)[:-keep] if keep > 0 else versions(ws)
    deleted = []
    for v in old:
        if v in protect or in_use(ws.artifacts_dir / v):
            continue
        shutil.rmtree(ws.artifacts_dir / v, ignore_errors=True)
        deleted.append(v)
    if deleted:
        fsync_dir(ws.artifacts_dir)
        _log.info("pruned artifact versions %s (keeping the newest %d)", deleted, keep)
    return deleted


def publish(ws: Workspace, built: Path, version: str, keep: int) -> Path:
    """Make a finished build durable, move it into ``artifacts/``, flip ``CURRENT``, prune.

    Parameters
    ----------
    ws
        The workspace.
    built
        The finished build folder (with its ``manifest.json``).
    version
        Its version name.
    keep
        How many versions to keep (``build.keep_versions``).

    Returns
    -------
    Path
        The version's folder.

    Raises
    ------
    OSError
        If the files cannot be flushed or moved; ``CURRENT`` is unchanged.
    """
    previous = ws.current_artifact()
    fsync_tree(built)
    final = ws.version_path(version)
    built.rename(final)
    fsync_dir(ws.artifacts_dir)
    ws.set_current(version)
    try:
        prune_versions(ws, keep, protect=frozenset({version, previous or version}))
    except OSError as e:  # the new version is live; pruning is tried again next build
        _log.warning("could not prune old artifact versions: %s", e)
    return final


class NewVersion:
    """A version being built: a hidden folder in ``artifacts/``, published whole or deleted.

    Use it as a context manager: the folder ``artifacts/.building-<version>`` exists inside the
    block, and is deleted if the block raises (``CURRENT`` unchanged). ``publish`` writes the
    manifest and makes the version live.

    Parameters
    ----------
    ws
        The workspace.
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.version = datetime.now(UTC).strftime(VERSION_FORMAT)
        self.folder = ws.artifacts_dir / f"{BUILDING_PREFIX}{self.version}"

    def __enter__(self) -> NewVersion:
        self.folder.mkdir(parents=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def publish(self, manifest: dict[str, Any], keep: int) -> Path:
        """Write ``manifest.json``, then ``publish`` the version (durable, live, old pruned).

        Raises
        ------
        OSError
            If the files cannot be written, flushed or moved; ``CURRENT`` is unchanged.
        """
        (self.folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        return publish(self.ws, self.folder, self.version, keep)
