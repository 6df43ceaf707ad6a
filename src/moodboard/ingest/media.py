"""Where a catalog's local images may live, checked at ingestion and recorded for serving.

A relative image path must resolve (symlinks included) inside the catalog file's folder; an
absolute one inside one of ``ingest.media_roots`` when that setting names folders (anywhere
otherwise); and every local image must be a whole JPEG, PNG or WebP. The folders accepted
images were found in are recorded in the workspace (``image_roots.json``) so that ``/images``
serves only files that still resolve inside them. URLs are stored as they are (never fetched).
Reasons never quote a file's contents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pyarrow as pa

from moodboard.errors import InputError
from moodboard.media import check_image_file, inside, open_image

#: The recorded image folders, in the workspace folder.
ROOTS_FILE = "image_roots.json"


def is_url(value: str) -> bool:
    """Whether a catalog image value is an http(s) URL (stored as is, never fetched)."""
    return value.lower().startswith(("http://", "https://"))


def image_problem(
    value: str, base: Path, media_roots: Sequence[Path], decode: bool = True
) -> tuple[str | None, Path | None]:
    """Check one local image value: ``(reason or None, resolved path or None)``.

    Parameters
    ----------
    value
        The catalog's image field (stripped, not a URL).
    base
        The catalog file's folder (relative paths must stay inside it).
    media_roots
        Folders an absolute path must lie under; empty: anywhere.
    decode
        Also decode the file (``ingest.check_images``).
    """
    p = Path(value)
    roots = [base] if not p.is_absolute() else list(media_roots)
    full = p if p.is_absolute() else base / p
    try:
        real = full.resolve(strict=True)
    except (OSError, RuntimeError):
        return "is not a readable file (relative to the catalog file's folder)", None
    if roots and not inside(real, roots):
        where = (
            "the catalog file's folder"
            if not p.is_absolute()
            else f"ingest.media_roots ({', '.join(str(r) for r in media_roots)})"
        )
        return f"resolves outside {where}: image paths must stay inside it", None
    if not real.is_file():
        return "is not a regular file", None
    if decode:
        try:
            check_image_file(real)
        except InputError as exc:
            return f"is not a usable image: {exc}", None
    return None, real


def image_problems(
    images: pa.ChunkedArray, base: Path, check: bool, media_roots: Sequence[Path] = ()
) -> pa.Array:
    """Why each local image of a batch is refused (null when fine, a URL, or absent).

    Containment is always checked; ``check`` (``ingest.check_images``) also decodes each file.
    """
    why: list[str | None] = []
    seen: dict[str, str | None] = {}
    for v in images.to_pylist():
        s = (v or "").strip()
        if not s or is_url(s):
            why.append(None)
        else:
            if s not in seen:
                seen[s] = image_problem(s, base, media_roots, decode=check)[0]
            why.append(seen[s])
    return pa.array(why, type=pa.string())


def stored_images(
    root: Path | str,
    images: Sequence[str | None],
    base: Path,
    earlier: Callable[[], Iterable[str]] = tuple,
) -> list[str | None]:
    """The image values to store for checked rows: local paths resolved (symlinks included);
    their folders are recorded in the workspace for ``/images``.

    Parameters
    ----------
    earlier
        The image values already stored; read once, when the workspace has no record yet (it
        was ingested by an older version): the folders of those that are still JPEG, PNG or
        WebP files are recorded too, so their products keep their images.
    """
    out: list[str | None] = []
    folders: set[Path] = set()
    if image_roots(root) is None:
        folders |= {Path(p).parent for p in earlier() if _still_an_image(p)}
    for v in images:
        if v and v.strip() and not is_url(v.strip()):
            real = (base / v.strip()).resolve()
            folders.add(real.parent)
            v = str(real)
        out.append(v)
    if folders:
        record_image_roots(root, sorted(folders))
    return out


def _still_an_image(value: str) -> bool:
    if not value or is_url(value):
        return False
    try:
        with open_image(value, 1 << 31):
            return True
    except InputError:
        return False


def image_roots(root: Path | str) -> list[Path] | None:
    """The folders ingested images were accepted in (None: an older workspace without any)."""
    try:
        data = json.loads((Path(root) / ROOTS_FILE).read_text())
        return [Path(r) for r in data["roots"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_image_roots(root: Path | str, folders: Sequence[Path]) -> None:
    """Add ``folders`` to the workspace's recorded image folders (atomically)."""
    known = image_roots(root) or []
    have = {str(r) for r in known}
    new = [str(f) for f in folders if str(f) not in have]
    if not new:
        return
    path = Path(root) / ROOTS_FILE
    tmp = path.with_name(f".{ROOTS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"roots": [str(r) for r in known] + new}, indent=1))
    os.replace(tmp, path)
