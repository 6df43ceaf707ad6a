"""An uploaded photo for visual search: decoded, turned upright, optionally cropped.

Uploads come from shoppers, so every failure is an ``InputError`` whose message says what to
send instead. The crop box is ``(x, y, w, h)`` in pixels of the image as it is displayed (after
its EXIF orientation is applied, as browsers show it).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

from PIL import Image, ImageOps, UnidentifiedImageError

from moodboard.errors import InputError

#: The smallest crop side, in pixels.
MIN_CROP = 8
_BAD = "could not decode the upload as an image: send a JPEG, PNG or WebP"

Crop = tuple[int, int, int, int]


def check_crop(crop: Sequence[int], width: int, height: int, min_side: int = MIN_CROP) -> Crop:
    """The crop box ``(x, y, w, h)`` if it lies inside a ``width`` x ``height`` image.

    Raises
    ------
    InputError
        If it is not four integers, or sticks out of the image, or a side is under
        ``min_side`` pixels.
    """
    try:
        values = tuple(crop)
        ok = len(values) == 4 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        )
    except TypeError:
        ok = False
    if not ok:
        raise InputError(
            f"The crop box must be four integers (x, y, w, h) in pixels. Got {crop!r} instead."
        )
    x, y, w, h = values
    if x < 0 or y < 0 or w < min_side or h < min_side or x + w > width or y + h > height:
        raise InputError(
            f"The crop box must lie inside the {width} x {height} px upload with sides of at "
            f"least {min_side} px: x >= 0, y >= 0, w >= {min_side}, h >= {min_side}, "
            f"x + w <= {width}, y + h <= {height}. Got (x={x}, y={y}, w={w}, h={h}) instead."
        )
    return x, y, w, h


def decode_upload(blob: bytes, crop: Sequence[int] | None = None) -> Image.Image:
    """The uploaded image, upright, cropped to ``crop`` when given.

    Parameters
    ----------
    blob
        The bytes of the uploaded file.
    crop
        ``(x, y, w, h)`` in pixels of the upright image, or None for the whole image.

    Returns
    -------
    PIL.Image.Image
        A loaded image (any mode; the encoder converts it to RGB).

    Raises
    ------
    InputError
        If the bytes are not an image Pillow decodes ("could not decode the upload as an
        image: send a JPEG, PNG or WebP (...)"), or the crop box is invalid.
    """
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) == 0:
        what = "it is empty" if isinstance(blob, bytes | bytearray | memoryview) else type(blob)
        raise InputError(f"{_BAD} ({what})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as im:
                im.load()
                upright = ImageOps.exif_transpose(im)
    except Exception as exc:  # Pillow raises many types for bad data
        if isinstance(exc, UnidentifiedImageError):
            why = "no known image format, or a corrupt header"
        else:
            why = f"{type(exc).__name__}: {exc}"
        raise InputError(f"{_BAD} ({why}; {len(blob):,} bytes)") from exc
    if crop is None:
        return upright
    x, y, w, h = check_crop(crop, upright.width, upright.height)
    return upright.crop((x, y, x + w, y + h))
