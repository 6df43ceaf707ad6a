"""Image space at serving: the engine's one image encoder and the version's visual head.

Uploads and crops become vectors in the ``visual/image`` space: the frozen backbone's
features (``understand.image``), then the head the version was built with
(``understand.visual_head``, saved next to the index by ``build.visual``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from moodboard.build.layout import part_path
from moodboard.media import MAX_PIXELS
from moodboard.understand.image import ImageEncoder
from moodboard.understand.visual_head import WEIGHTS_FILE as HEAD_WEIGHTS
from moodboard.understand.visual_head import VisualHead


class SharedImageEncoder:
    """One ``ImageEncoder`` for the whole engine, created on first use (thread-safe; with the
    head's backbone tail), and the version's visual head applied to what it embeds (vectors in
    the ``visual/image`` space).

    Parameters
    ----------
    max_pixels
        Most pixels of an uploaded image, checked before decoding (``serve.max_image_pixels``).
    head
        The version's visual head (``build.visual``); None: the backbone's features as they
        come (a version built without a head).
    """

    def __init__(self, max_pixels: int = MAX_PIXELS, head: VisualHead | None = None) -> None:
        self.max_pixels = max_pixels
        self.head = head
        self._lock = threading.Lock()
        self._encoder: ImageEncoder | None = None

    def get(self) -> ImageEncoder:
        """The encoder (its model loads on its first image)."""
        with self._lock:
            if self._encoder is None:
                self._encoder = ImageEncoder() if self.head is None else self.head.image_encoder()
            return self._encoder

    def _space(self, backbone: np.ndarray) -> np.ndarray:
        return backbone if self.head is None else self.head(backbone)

    def encode_upload(
        self, blob: bytes, crop: tuple[int, int, int, int] | None = None
    ) -> np.ndarray:
        """An upload's ``visual/image`` vector: ``ImageEncoder.encode_upload`` of the shared
        encoder, then the head (raises ``InputError``)."""
        backbone = self.get().encode_upload(blob, crop, self.max_pixels)
        return self._space(backbone[None, :])[0]

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """``visual/image`` vectors of decoded images (e.g. the crops of one photo): float32
        ``(n, dim)`` unit rows (raises ``InputError`` for an item that is not an image)."""
        return self._space(self.get().encode_images(images))


def load_visual_head(path: Path, manifest: dict[str, Any]) -> VisualHead | None:
    """The visual head saved with the version's ``visual/image`` index, or None.

    Raises
    ------
    InputError
        If the saved head is unreadable.
    """
    found = part_path(path, manifest, "visual/image")
    if found is None or not (found / HEAD_WEIGHTS).is_file():
        return None
    return VisualHead.load(found)
