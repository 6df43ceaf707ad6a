"""Query texts -> unit vectors, the recent ones kept: the engine's ``encode`` resource, and the
memo a build's search ranker embeds its logged queries with."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from moodboard.understand.text import TextEncoder


class QueryVectors:
    """Texts -> unit vectors (``TextEncoder.encode``), with the vectors of the last ``size``
    texts kept (a search's next page, a head query and its sub-searches, a simulated shopper's
    query again); the texts not kept are encoded in one batch; callers get a copy.

    Parameters
    ----------
    encoder
        The text encoder.
    size
        Most texts kept (least recently used leave first); None keeps every text (a build
        asking for the same logged queries many times).
    """

    def __init__(self, encoder: TextEncoder, size: int | None = 4096) -> None:
        self.encoder = encoder
        self.size = size
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text."""
        texts = list(texts)
        with self._lock:
            found = {t: self._kept[t] for t in texts if t in self._kept}
            for t in found:
                self._kept.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            rows = np.asarray(self.encoder.encode(missing))
            with self._lock:
                for t, row in zip(missing, rows, strict=True):
                    found[t] = self._kept[t] = row
                while self.size is not None and len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        if not texts:
            return self.encoder.encode(texts)
        return np.stack([found[t] for t in texts]).copy()

    def prime(self, texts: Sequence[str]) -> None:
        """Embed and keep the texts not kept yet, in the encoder's batches."""
        if texts:
            self(list(dict.fromkeys(texts)))
