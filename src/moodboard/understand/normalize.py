"""Text normalization shared by query parsing and by what is learned from the catalog.

``normalize_text`` lowercases, applies Unicode NFKC, strips punctuation and symbols (keeping
``-``, ``.`` and ``/`` inside tokens that hold a digit, so ``"2x4"``, ``"r-13"``, ``"1/2"`` and
``"3.5"`` survive), drops apostrophes (``"men's"`` -> ``"mens"``) and thousands separators
(``"1,000"`` -> ``"1000"``), and collapses whitespace. Hyphens and slashes between letters
separate words (``"t-shirt"`` -> ``"t shirt"``).
"""

from __future__ import annotations

import logging
import re
import unicodedata

_log = logging.getLogger(__name__)

_APOSTROPHES = re.compile(r"['’‘`´]")
_DASHES = re.compile(r"[‐-―−]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")
_NOT_KEPT_IN_CODES = re.compile(r"[^\w\-./]|_")
_LOOSE_JOINERS = re.compile(r"(?<![^\W_])[-./]|[-./](?![^\W_])")
_DIGIT = re.compile(r"\d")


def prepare(text: str) -> str:
    """NFKC, lowercase, one kind of dash and apostrophe-free, whitespace collapsed.

    This keeps symbols such as ``$`` and ``<`` (the price parser reads them); the result is
    the input of ``normalize_text``.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DASHES.sub("-", text)
    text = _APOSTROPHES.sub("", text)
    text = _THOUSANDS.sub("", text)
    return _SPACES.sub(" ", text).strip()


def _normalize_token(token: str) -> str:
    if _DIGIT.search(token):
        token = _NOT_KEPT_IN_CODES.sub(" ", token)
        return _LOOSE_JOINERS.sub(" ", token)
    return _NON_WORD.sub(" ", token)


def normalize_text(text: str) -> str:
    """The normalized form of ``text`` (see the module docstring).

    Examples
    --------
    >>> normalize_text("Men's  NAVY-Blue T-Shirt, 1/2 inch (r-13)!")
    'mens navy blue t shirt 1/2 inch r-13'
    """
    pieces = (_normalize_token(t) for t in prepare(text).split(" "))
    return _SPACES.sub(" ", " ".join(pieces)).strip()


def tokenize(text: str) -> list[str]:
    """The tokens of ``normalize_text(text)``."""
    norm = normalize_text(text)
    return norm.split(" ") if norm else []


def has_digit(token: str) -> bool:
    """Whether ``token`` holds a digit (numbers, sizes and model codes)."""
    return _DIGIT.search(token) is not None
