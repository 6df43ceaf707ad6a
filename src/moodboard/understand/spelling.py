"""Spelling correction of query tokens against a catalog's own vocabulary (symspellpy).

The vocabulary is the words of the catalog (and of past queries) with their counts. A token is
corrected only when it is a plain word (no digit: numbers, sizes and model codes such as
``"2x4"`` or ``"r-13"`` are never touched), not a short run of consonants (``"dpdt"`` is an
abbreviation), at least ``min_length`` characters long, not in the vocabulary, not a protected
word (attribute and price words), not the plural of a vocabulary word and, when ``background``
is on, not a common English word of symspellpy's bundled frequency dictionary either (an
English word is still corrected, at distance 1, to a catalog word ``background_ratio`` times
more frequent in English, ``"singe"`` -> ``"single"``, or that makes a frequent catalog pair
with a neighbour, ``"black heals"`` -> ``"black heels"``).

The correction is a vocabulary word at the smallest edit distance (up to 1 for words shorter
than ``long_length``, 2 for longer ones); among several at that distance, the one with the best
log count plus ``context_weight`` times the log counts of the catalog's word pairs it makes with
the query's neighbouring words.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from symspellpy import SymSpell, Verbosity

from moodboard.understand.normalize import has_digit, normalize_text

_log = logging.getLogger(__name__)

_ENGLISH = "frequency_dictionary_en_82_765.txt"


@cache
def english_counts() -> dict[str, int]:
    """Word -> count of symspellpy's bundled English frequency dictionary (82,765 words)."""
    text = resources.files("symspellpy").joinpath(_ENGLISH).read_text(encoding="utf-8")
    counts: dict[str, int] = {}
    for line in text.splitlines():
        word, _, count = line.partition(" ")
        if word:
            counts[word] = int(count or 0)
    return counts


def count_words(
    texts: Iterable[str], bigram_min_count: int = 1
) -> tuple[dict[str, int], dict[str, int]]:
    """Word counts and ``"left right"`` pair counts of texts, after ``normalize_text``.

    Pairs seen fewer than ``bigram_min_count`` times are left out.
    """
    counts: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for text in texts:
        words = normalize_text(text).split(" ")
        counts.update(w for w in words if w)
        bigrams.update(f"{a} {b}" for a, b in itertools.pairwise(words) if a and b)
    return dict(counts), {k: v for k, v in bigrams.items() if v >= bigram_min_count}


class SpellingCorrector:
    """Token-level spelling correction over a fixed vocabulary.

    Build one with ``SpellingCorrector.build``; the constructor only stores the parameters.

    Parameters
    ----------
    counts
        Word -> count: the vocabulary corrections are drawn from.
    protected
        Words never corrected even when absent from ``counts``.
    min_length
        Shorter tokens are never corrected.
    long_length
        Tokens at least this long may be corrected at edit distance 2, shorter ones at 1.
    background
        Also leave alone the common words of the bundled English dictionary.
    background_ratio
        How much more frequent in English a catalog word one edit away from an English word must
        be for that word to be corrected.
    bigrams
        ``"left right"`` -> count: the catalog's word pairs, to choose among candidates at the
        same distance by their neighbours in the query.
    context_weight
        The weight of the neighbours' log pair counts against the candidate's log count.
    context_min_pairs
        An English word is also corrected when the catalog word one edit away makes a pair with
        a neighbour seen this many times (``"black heals"`` -> ``"black heels"``).
    """

    def __init__(
        self,
        counts: Mapping[str, int],
        protected: Iterable[str] = (),
        *,
        min_length: int = 4,
        long_length: int = 8,
        background: bool = True,
        background_ratio: float = 100.0,
        bigrams: Mapping[str, int] | None = None,
        context_weight: float = 2.0,
        context_min_pairs: int = 5,
    ) -> None:
        self.counts = dict(counts)
        self.protected = frozenset(protected)
        self.min_length = min_length
        self.long_length = long_length
        self.background = background
        self.background_ratio = background_ratio
        self.bigrams = dict(bigrams or {})
        self.context_weight = context_weight
        self.context_min_pairs = context_min_pairs
        self._symspell: SymSpell | None = None

    @classmethod
    def build(
        cls, counts: Mapping[str, int], protected: Iterable[str] = (), **options: Any
    ) -> SpellingCorrector:
        """A corrector with its symspell index built.

        Parameters
        ----------
        counts, protected
            As for the class.
        **options
            The class's keyword parameters (``min_length``, ``long_length``, ``background``,
            ``background_ratio``, ``bigrams``, ``context_weight``, ``context_min_pairs``).

        Returns
        -------
        SpellingCorrector
            Ready to ``correct``.
        """
        corrector = cls(counts, protected, **options)
        symspell = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        for word, count in corrector.counts.items():
            if count > 0 and word and not has_digit(word):
                symspell.create_dictionary_entry(word, count)
        corrector._symspell = symspell
        _log.info("spelling: %d words in the vocabulary", len(corrector.counts))
        return corrector

    def is_known(self, token: str) -> bool:
        """Whether ``token`` is left as it is because it is a known word (or not a word)."""
        return (
            len(token) < self.min_length
            or has_digit(token)
            or not token.isalpha()
            or (len(token) <= 4 and not any(v in token for v in "aeiouy"))
            or token in self.counts
            or token in self.protected
        )

    def suggest(self, token: str, left: str | None = None, right: str | None = None) -> str | None:
        """The correction of one token between two neighbours, or None to leave it as it is."""
        if self._symspell is None or self.is_known(token):
            return None
        english = english_counts().get(token, 0) if self.background else 0
        distance = 2 if len(token) >= self.long_length and not english else 1
        found = self._symspell.lookup(token, Verbosity.ALL, max_edit_distance=distance)
        if not found:
            return None
        nearest = min(s.distance for s in found)

        def pairs(term: str) -> tuple[int, int]:
            return (
                self.bigrams.get(f"{left} {term}", 0) if left else 0,
                self.bigrams.get(f"{term} {right}", 0) if right else 0,
            )

        def score(term: str, count: int) -> float:
            context = sum(math.log1p(n) for n in pairs(term))
            return math.log(count) + self.context_weight * context

        best = max(
            (s for s in found if s.distance == nearest), key=lambda s: score(s.term, s.count)
        )
        if token in (best.term + "s", best.term + "es"):  # a plural is not a misspelling
            return None
        if english:  # an English word needs a far more frequent or well-supported catalog word
            common = english_counts().get(best.term, 0) >= self.background_ratio * english
            if not common and max(pairs(best.term)) < self.context_min_pairs:
                return None
        return None if best.term == token else str(best.term)

    def correct(self, tokens: Sequence[str]) -> dict[str, str]:
        """The corrections of a token list: wrong -> right (tokens left alone are absent).

        Each token is judged with its neighbours in the list as context, the left one as
        already corrected.
        """
        out: dict[str, str] = {}
        for i, token in enumerate(tokens):
            if token in out:
                continue
            left = out.get(tokens[i - 1], tokens[i - 1]) if i > 0 else None
            right = tokens[i + 1] if i + 1 < len(tokens) else None
            if (fixed := self.suggest(token, left, right)) is not None:
                out[token] = fixed
        return out

    def to_json(self) -> dict[str, object]:
        """The corrector as plain JSON data (the index is rebuilt on load)."""
        return {
            "counts": self.counts,
            "protected": sorted(self.protected),
            "min_length": self.min_length,
            "long_length": self.long_length,
            "background": self.background,
            "background_ratio": self.background_ratio,
            "bigrams": self.bigrams,
            "context_weight": self.context_weight,
            "context_min_pairs": self.context_min_pairs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SpellingCorrector:
        """The inverse of ``to_json``.

        Raises
        ------
        KeyError
            If a field is missing.
        """
        return cls.build(
            data["counts"],  # type: ignore[arg-type]
            data["protected"],  # type: ignore[arg-type]
            min_length=int(data["min_length"]),  # type: ignore[arg-type]
            long_length=int(data["long_length"]),  # type: ignore[arg-type]
            background=bool(data["background"]),
            background_ratio=float(data["background_ratio"]),  # type: ignore[arg-type]
            bigrams=data["bigrams"],  # type: ignore[arg-type]
            context_weight=float(data["context_weight"]),  # type: ignore[arg-type]
            context_min_pairs=int(data["context_min_pairs"]),  # type: ignore[arg-type]
        )
