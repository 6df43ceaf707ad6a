"""An uploaded photo for visual search: decoded, turned upright, optionally cropped.

Uploads come from shoppers, so every failure is an ``InputError`` whose message says what to
send instead. The crop box is ``(x, y, w, h)`` in pixels of the image as it is displayed (after
its EXIF orientation is applied, as browsers show it).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import ExifTags, Image, ImageOps

from moodboard.errors import InputError
from moodboard.media import MAX_PIXELS, open_image

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


def _upright_size(im: Image.Image) -> tuple[int, int]:
    """The size of ``im`` once its EXIF orientation is applied (read from the header only)."""
    w, h = im.size
    try:
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a corrupt EXIF block: exif_transpose will ignore it too
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def decode_photo(
    blob: bytes, max_pixels: int = MAX_PIXELS, min_side: int = 448
) -> tuple[Image.Image, int, int]:
    """The whole uploaded image decoded once for object detection, and the width and height
    of the upright upload in its own pixels (the image may be reduced to no less than
    ``min_side`` px: boxes found in it scale back by ``width / image.width``).

    Raises
    ------
    InputError
        As ``decode_upload``.
    """
    return _decode(blob, None, max_pixels, min_side)


def decode_upload(
    blob: bytes,
    crop: Sequence[int] | None = None,
    max_pixels: int = MAX_PIXELS,
    min_side: int = 224,
) -> Image.Image:
    """The uploaded image, upright, cropped to ``crop`` when given.

    The format (JPEG, PNG or WebP) and the size (at most ``max_pixels``) are checked from the
    header before anything is decoded; a JPEG is decoded at the smallest DCT scale that keeps
    the cropped part at least ``min_side`` px (what the model needs), so a large photo costs a
    fraction of its full size in memory and time; the (cropped) image is then reduced by a
    whole factor to no less than ``min_side`` px, without intermediate copies.

    Parameters
    ----------
    blob
        The bytes of the uploaded file.
    crop
        ``(x, y, w, h)`` in pixels of the upright image, or None for the whole image.
    max_pixels
        Most pixels (width x height) accepted.
    min_side
        The smallest side the decoded (cropped) image may be reduced to.

    Returns
    -------
    PIL.Image.Image
        A loaded image (any mode; the encoder converts it to RGB).

    Raises
    ------
    InputError
        If the bytes are not a JPEG, PNG or WebP Pillow decodes, the image has more than
        ``max_pixels`` pixels ("... send a JPEG, PNG or WebP ..."), or the crop box is invalid.
    """
    return _decode(blob, crop, max_pixels, min_side)[0]


def _decode(
    blob: bytes, crop: Sequence[int] | None, max_pixels: int, min_side: int
) -> tuple[Image.Image, int, int]:
    """``decode_upload``, and the upright upload's width and height."""
    if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) == 0:
        what = "it is empty" if isinstance(blob, bytes | bytearray | memoryview) else type(blob)
        raise InputError(f"{_BAD} ({what})")
    im = open_image(blob, max_pixels, "the upload")  # format and size, from the header
    width, height = _upright_size(im)
    box = None if crop is None else check_crop(crop, width, height)
    cw, ch = (width, height) if box is None else (box[2], box[3])
    scale = max(1, min(cw, ch) // min_side)
    if scale > 1:
        im.draft(None, (im.width // scale, im.height // scale))  # JPEG only: DCT scaling
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)  # no copy unless it is rotated
    except Exception as exc:  # Pillow raises many types for bad data
        raise InputError(f"{_BAD} ({type(exc).__name__}: {exc}; {len(blob):,} bytes)") from exc
    sx, sy = im.width / width, im.height / height  # < 1 after a DCT-scaled decode
    x, y, w, h = box if box is not None else (0, 0, width, height)
    region = (
        int(x * sx),
        int(y * sy),
        max(int(x * sx) + 1, round((x + w) * sx)),
        max(int(y * sy) + 1, round((y + h) * sy)),
    )
    factor = max(1, min(region[2] - region[0], region[3] - region[1]) // min_side)
    if factor > 1:  # PNG, WebP: shrink by whole factors (box averaging) before converting
        try:
            return im.reduce(factor, box=region), width, height
        except ValueError:  # palette, 1-bit and 16-bit images: Pillow reduces no such mode
            size = ((region[2] - region[0]) // factor, (region[3] - region[1]) // factor)
            return im.resize(size, Image.Resampling.NEAREST, box=region), width, height
    return (im if box is None else im.crop(region)), width, height
