"""Image files from outside: which formats are accepted, how big, and where they may live.

A leaf module (like ``errors``): ingestion, the image encoder and the server all open client or
catalog images through ``open_image``, which reads only the header (Pillow opens lazily),
refuses any format but JPEG, PNG and WebP (no GIF, TIFF, BMP, EPS: no Ghostscript, no
exotic decoders) and refuses an image of more than ``max_pixels`` before a pixel is decoded.
Nothing here changes Pillow's global state (``Image.MAX_IMAGE_PIXELS``, warning filters), so it
is safe from any thread.

Messages never echo file contents: they name the format, the size and the limit.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from moodboard.errors import InputError

#: Pillow format names accepted anywhere (uploads, catalog images, ``/images``).
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP")
#: The media type ``/images`` sends for each accepted format.
MEDIA_TYPES: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
#: The default pixel limit (width x height) of an image, e.g. 40 MP (an 8000 x 5000 photo).
MAX_PIXELS = 40_000_000
#: How ``open_image`` names the accepted formats in its messages.
ALLOWED_NAMES = "JPEG, PNG or WebP"


class ImageRefused(InputError):
    """An image in a format we do not accept, over the pixel limit, or not an image at all."""


def open_image(
    source: bytes | bytearray | memoryview | Path | str,
    max_pixels: int = MAX_PIXELS,
    what: str = "the image",
) -> Image.Image:
    """Open an image lazily (header only) after checking its format and size.

    Parameters
    ----------
    source
        The encoded bytes, or a file path.
    max_pixels
        Most pixels (width x height) accepted.
    what
        How messages name the image (e.g. "the upload").

    Returns
    -------
    PIL.Image.Image
        An opened, not yet decoded image (call ``draft`` / ``load`` next); the caller closes it.

    Raises
    ------
    ImageRefused
        If it is not a JPEG, PNG or WebP, or its header is corrupt, or it has more than
        ``max_pixels`` pixels.
    """
    fp = Path(source) if isinstance(source, (str, Path)) else io.BytesIO(bytes(source))
    try:
        im = Image.open(fp, formats=ALLOWED_FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        if isinstance(exc, Image.DecompressionBombError):
            raise ImageRefused(
                f"{what} has too many pixels: the limit is {max_pixels:,} (width x height). "
                "Send a smaller image."
            ) from exc
        raise ImageRefused(
            f"could not decode {what} as an image: send a {ALLOWED_NAMES} (other formats such "
            "as GIF, TIFF, BMP or EPS are refused, and so is a corrupt header)"
        ) from exc
    except OSError as exc:
        raise ImageRefused(
            f"could not decode {what} as an image: send a whole {ALLOWED_NAMES} (it is "
            f"truncated or corrupt: {type(exc).__name__})"
        ) from exc
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise ImageRefused(
            f"{what} is {w} x {h} = {w * h:,} pixels; the limit is {max_pixels:,} pixels "
            "(width x height). Send a smaller image."
        )
    return im


def check_image_file(path: Path | str, max_pixels: int = MAX_PIXELS) -> str:
    """Decode an image file (JPEG at 1/8 scale) to prove it is whole; returns its format.

    Raises
    ------
    ImageRefused
        If it is not a whole JPEG, PNG or WebP of at most ``max_pixels`` pixels.
    """
    with open_image(path, max_pixels, "the image file") as im:
        fmt = str(im.format)
        try:
            im.draft("RGB", (32, 32))  # JPEG: decode at reduced scale, enough to prove it
            im.load()
        except Exception as exc:  # Pillow raises many types for bad data
            raise ImageRefused(
                f"the image file is a {fmt} that does not decode ({type(exc).__name__}): it is "
                "truncated or corrupt"
            ) from exc
    return fmt


def inside(path: Path | str, roots: list[Path] | tuple[Path, ...]) -> bool:
    """Whether ``path``, symlinks resolved, lies inside one of ``roots`` (also resolved)."""
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    for root in roots:
        try:
            if real.is_relative_to(Path(root).resolve()):
                return True
        except (OSError, RuntimeError):
            continue
    return False
