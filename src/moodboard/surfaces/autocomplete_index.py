"""A prefix index over completion texts: a sorted numpy array and ``np.searchsorted``.

Texts are stored as UTF-8 bytes (``S`` dtype) in byte order, so the texts starting with a
prefix are one contiguous range ``[lo, hi)`` found by two binary searches. The best ``m``
texts of a range by a prior score come from a table precomputed at build time for short
prefixes (where ranges are long) and from ``np.argpartition`` over the range otherwise.
Typo tolerance asks the ranges of every one-edit variant of a prefix in one vectorized
``searchsorted`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: The byte after every UTF-8 byte: ``prefix + _TOP`` bounds the texts starting with ``prefix``.
_TOP = b"\xff"


#: The letters tried by substitutions and insertions.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 "


def one_edit_variants(prefix: str, alphabet: str = ALPHABET, start: int = 0) -> list[str]:
    """Every string one edit away from ``prefix`` at a position >= ``start`` (a deletion, a
    substitution, a swap of neighbours or an insertion of a letter of ``alphabet``); the last
    character is never deleted alone at the end (that is a shorter prefix, already covered)."""
    out: set[str] = set()
    n = len(prefix)
    for i in range(start, n):
        head, tail = prefix[:i], prefix[i + 1 :]
        if i < n - 1:
            out.add(head + tail)
            out.add(head + prefix[i + 1] + prefix[i] + prefix[i + 2 :])
        for c in alphabet:
            out.add(head + c + tail)
            out.add(head + c + prefix[i:])
    out.discard(prefix)
    return sorted(v for v in out if v.strip())


class PrefixIndex:
    """Sorted texts with a prior score, answering "the best texts starting with p".

    Parameters
    ----------
    texts
        The texts (unique).
    prior
        A score per text: higher first when a range is cut to ``m``.
    precompute_chars
        Prefixes up to this many characters get their top list stored.
    top_m
        Length of the stored top lists.
    """

    def __init__(
        self,
        texts: Sequence[str],
        prior: np.ndarray,
        precompute_chars: int = 2,
        top_m: int = 64,
    ) -> None:
        keys = np.array([t.encode("utf-8") for t in texts], dtype=bytes)
        order = np.argsort(keys, kind="stable")
        self.order = order.astype(np.int32)  # sorted position -> original text index
        self.keys = keys[order]
        self.prior = np.asarray(prior, dtype=np.float64)[order]
        self.top_m = top_m
        short = sorted(
            {t[:n] for t in texts for n in range(1, precompute_chars + 1) if len(t) >= n}
        )
        self.top_prefixes = np.array([s.encode("utf-8") for s in short], dtype=bytes)
        table = np.full((len(short), top_m), -1, dtype=np.int32)
        for row, p in enumerate(self.top_prefixes):
            best = self._best(*self._range(p), top_m)
            table[row, : len(best)] = best
        self.top_table = table

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_arrays(
        cls,
        order: np.ndarray,
        keys: np.ndarray,
        prior: np.ndarray,
        top_prefixes: np.ndarray,
        top_table: np.ndarray,
    ) -> PrefixIndex:
        """An index from its saved arrays (``arrays()``)."""
        self = cls.__new__(cls)
        self.order, self.keys, self.prior = order, keys, prior
        self.top_prefixes, self.top_table = top_prefixes, top_table
        self.top_m = int(top_table.shape[1]) if top_table.ndim == 2 else 0
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that make the index (saved as ``.npy``)."""
        return {
            "order": self.order,
            "keys": self.keys,
            "prior": self.prior,
            "top_prefixes": self.top_prefixes,
            "top_table": self.top_table,
        }

    def save(self, folder: Path) -> None:
        """Save its arrays as ``.npy`` files in ``folder``."""
        for name, a in self.arrays().items():
            np.save(folder / f"index_{name}.npy", a, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> PrefixIndex:
        """The index saved in ``folder`` (no pickles)."""
        names = ("order", "keys", "prior", "top_prefixes", "top_table")
        return cls.from_arrays(
            *(np.load(folder / f"index_{n}.npy", allow_pickle=False) for n in names)
        )

    def _range(self, prefix: bytes) -> tuple[int, int]:
        lo = int(np.searchsorted(self.keys, prefix, "left"))
        hi = int(np.searchsorted(self.keys, prefix + _TOP, "left"))
        return lo, hi

    def _best(self, lo: int, hi: int, m: int) -> np.ndarray:
        """Sorted positions of the best ``m`` texts of ``[lo, hi)`` by prior, best first."""
        if hi - lo <= m:
            pos = np.arange(lo, hi)
        else:
            pos = lo + np.argpartition(-self.prior[lo:hi], m - 1)[:m]
        return pos[np.argsort(-self.prior[pos], kind="stable")].astype(np.int32)

    def matched_chars(self, prefix: str) -> int:
        """The length of the longest start of ``prefix`` some text starts with."""
        lo, hi = 0, len(prefix)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(prefix[:mid]):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def variants(self, prefix: str, window: int = 3) -> list[str]:
        """The one-edit variants of ``prefix`` worth asking: an edit can only help at or
        before the first character no text follows, so edits start ``window`` characters
        before it (typos are near where the matches stop)."""
        where = self.matched_chars(prefix)
        return one_edit_variants(prefix, start=max(0, where - window))

    def count(self, prefix: str) -> int:
        """How many texts start with ``prefix``."""
        lo, hi = self._range(prefix.encode("utf-8"))
        return hi - lo

    def _top_sorted(self, p: bytes, lo: int, hi: int, m: int) -> np.ndarray:
        """Sorted positions of the best ``m`` texts of ``p``'s range ``[lo, hi)``."""
        if hi - lo > m and m <= self.top_m:
            row = int(np.searchsorted(self.top_prefixes, p))
            if row < len(self.top_prefixes) and self.top_prefixes[row] == p:
                got = self.top_table[row, :m]
                return got[got >= 0]
        return self._best(lo, hi, m)

    def top(self, prefix: str, m: int) -> np.ndarray:
        """Original indices of the best ``m`` texts starting with ``prefix`` (best first)."""
        p = prefix.encode("utf-8")
        return self.order[self._top_sorted(p, *self._range(p), m)]

    def top_of_variants(self, variants: Sequence[str], m: int) -> np.ndarray:
        """Original indices of the best ``m`` texts starting with any of ``variants`` (one
        vectorized search for all of them; best first)."""
        if not variants:
            return np.zeros(0, dtype=np.int32)
        enc = [v.encode("utf-8") for v in variants]
        lo = np.searchsorted(self.keys, np.array(enc, dtype=bytes), "left")
        hi = np.searchsorted(self.keys, np.array([e + _TOP for e in enc], dtype=bytes), "left")
        hit = np.flatnonzero(hi > lo)
        if not len(hit):
            return np.zeros(0, dtype=np.int32)
        # the best of each variant's range (short variants from the precomputed lists)
        pos = np.unique(np.concatenate([self._top_sorted(enc[i], lo[i], hi[i], m) for i in hit]))
        pos = pos[np.argsort(-self.prior[pos], kind="stable")][:m]
        return self.order[pos]

    def range_sum(self, prefix: str, cumsum: np.ndarray) -> float:
        """The sum of a column (given as its cumulative sum in sorted order, with a leading 0)
        over the texts starting with ``prefix``."""
        lo, hi = self._range(prefix.encode("utf-8"))
        return float(cumsum[hi] - cumsum[lo])

    def sorted_cumsum(self, column: np.ndarray) -> np.ndarray:
        """``column`` (by original index) summed cumulatively in sorted order, from 0."""
        return np.concatenate([[0.0], np.cumsum(np.asarray(column, dtype=np.float64)[self.order])])
