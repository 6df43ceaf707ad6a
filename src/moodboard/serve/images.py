"""Which catalog image file ``/images/{id}`` may send, and as what media type.

Ingestion stored each local image resolved (symlinks included) and recorded the folders it
accepted images in (``ingest.media``). Serving checks again, since files change after
ingestion: the stored path must still resolve inside one of those folders, and its header must
say JPEG, PNG or WebP, which also decides the media type (never the file name).
"""

from __future__ import annotations

import logging
from pathlib import Path

from moodboard.errors import InputError
from moodboard.ingest.media import image_roots, is_url
from moodboard.media import MEDIA_TYPES, open_image

_log = logging.getLogger(__name__)

#: ``/images`` sniffs the header only, so its pixel limit is generous (catalog photos).
_SERVE_PIXELS = 1 << 31


def served_image(ws_root: Path | str, stored: str | None) -> tuple[Path, str] | None:
    """``(file, media type)`` of a product's stored image, or None when it must not be sent.

    Parameters
    ----------
    ws_root
        The workspace folder (its recorded image folders).
    stored
        The product's ``image`` value as stored at ingestion.
    """
    if not stored or is_url(stored):
        return None
    try:
        real = Path(stored).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    roots = image_roots(ws_root)
    if roots is not None and not any(real.is_relative_to(r) for r in roots):
        _log.warning("refusing to serve %s: it resolves outside the ingested image folders", real)
        return None
    if not real.is_file():
        return None
    try:
        with open_image(real, _SERVE_PIXELS) as im:
            fmt = str(im.format)
    except InputError:
        _log.warning("refusing to serve %s: not a JPEG, PNG or WebP", real)
        return None
    return real, MEDIA_TYPES[fmt]
