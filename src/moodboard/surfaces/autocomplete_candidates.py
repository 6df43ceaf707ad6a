"""The completion candidates of autocomplete and their statistics.

Candidates come from the search log (queries whose results got engagement, and their first
``head_words`` words: "angle bracket" from "angle bracket 90") and from the catalog (phrases of
1..``title_ngram`` words found in titles, the leading words of titles, attribute combinations
such as "navy blue shirts"; a title phrase starting or ending with a word such as "with" or
"of" is left out). Each candidate keeps the numbers the ranker reads: time-decayed
popularity of the queries equal to it and starting with it, how often the catalog uses it,
the engagement of its searches, and its most frequent category.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from moodboard.config.autocomplete import AutocompleteConfig
from moodboard.understand.normalize import normalize_text

#: The statistics of each candidate (columns of ``CandidateTable.columns``).
COLUMNS = ("pop_full", "pop_starts", "engagement", "cat_any", "cat_lead", "combo")


@dataclass(frozen=True)
class QueryLog:
    """Logged searches, one row each.

    Attributes
    ----------
    queries
        The query texts.
    weight
        Each search's weight (1, or a time decay).
    strength
        The strength of the engagement its results got (0: none; only engaged searches make
        candidates and popularity).
    users
        Who searched (None: unknown), for the user-interest feature of training.
    categories
        The category of an item engaged with from its results (None: unknown).
    """

    queries: Sequence[str]
    weight: np.ndarray
    strength: np.ndarray
    users: Sequence[str | None] | None = None
    categories: Sequence[str | None] | None = None

    def __len__(self) -> int:
        return len(self.queries)

    def take(self, rows: np.ndarray, scale: float = 1.0) -> QueryLog:
        """The log of ``rows`` only, weights times ``scale``."""

        def pick(col: Sequence | None) -> list | None:
            return None if col is None else [col[i] for i in rows]

        return QueryLog(
            [self.queries[i] for i in rows],
            np.asarray(self.weight, dtype=np.float64)[rows] * scale,
            np.asarray(self.strength, dtype=np.float64)[rows],
            pick(self.users),
            pick(self.categories),
        )


@dataclass(frozen=True)
class CatalogText:
    """What the catalog contributes: titles, their categories, attribute-combination phrases."""

    titles: Sequence[str]
    categories: Sequence[str | None] | None = None
    phrases: Sequence[str] = field(default_factory=tuple)


@dataclass
class CandidateTable:
    """Candidate texts (normalized), their statistics and categories.

    Attributes
    ----------
    texts
        The candidates.
    columns
        One row per candidate, one column per name of ``COLUMNS`` (float32).
    category
        Index of each candidate's most frequent category in ``categories`` (-1: none).
    categories
        The category names.
    """

    texts: list[str]
    columns: np.ndarray
    category: np.ndarray
    categories: list[str]

    def column(self, name: str) -> np.ndarray:
        """The column ``name`` of ``COLUMNS``."""
        return self.columns[:, COLUMNS.index(name)]


@functools.lru_cache(maxsize=262_144)
def _normalized(text: str) -> str:
    return normalize_text(text)


#: Words a catalog phrase may not start or end with ("watch with", "of the"): half phrases.
_LOOSE_ENDS = frozenset(
    ["a", "an", "and", "as", "at", "by", "for", "from", "of", "on", "or", "the", "to", "with"]
)


def _loose(text: str) -> bool:
    words = text.split(" ")
    return words[0] in _LOOSE_ENDS or words[-1] in _LOOSE_ENDS


def words_of(text: str) -> list[str]:
    """The whole words of ``text`` as completions compare them (``normalize_text``)."""
    norm = _normalized(text)
    return norm.split(" ") if norm else []


def is_blocked(text: str, blocked: Sequence[str]) -> bool:
    """Whether normalized ``text`` holds one of the normalized ``blocked`` terms as words."""
    padded = f" {text} "
    return any(f" {b} " in padded for b in blocked if b)


def _add(stats: dict[str, list[float]], key: str, col: int, value: float) -> None:
    row = stats.get(key)
    if row is None:
        row = stats[key] = [0.0] * (len(COLUMNS) + 1)  # the last: weight of all searches
    row[col] += value


def candidate_table(log: QueryLog, catalog: CatalogText, cfg: AutocompleteConfig) -> CandidateTable:
    """The candidates of ``log`` and ``catalog`` with their statistics (see the module)."""
    stats: dict[str, list[float]] = {}
    cats: dict[str, Counter[str]] = defaultdict(Counter)
    full, starts, eng, any_, lead, combo = range(len(COLUMNS))
    seen = len(COLUMNS)
    log_cats = log.categories or [None] * len(log)
    for q, w, s, c in zip(log.queries, log.weight, log.strength, log_cats, strict=True):
        ws = words_of(q)
        if not ws:
            continue
        phrases = {" ".join(ws[:j]) for j in range(1, min(cfg.head_words, len(ws)) + 1)}
        text = " ".join(ws)
        phrases.add(text)
        for p in phrases:
            _add(stats, p, seen, float(w))
            _add(stats, p, eng, float(w * s))
            if s > 0:
                _add(stats, p, starts, float(w))
                if c:
                    cats[p][c] += 1
        if s > 0:
            _add(stats, text, full, float(w))
    from_log = {t for t, row in stats.items() if row[starts] > 0}
    title_cats = catalog.categories or [None] * len(catalog.titles)
    for title, c in zip(catalog.titles, title_cats, strict=True):
        ws = words_of(title)
        grams = {
            " ".join(ws[i : i + n])
            for n in range(1, cfg.title_ngram + 1)
            for i in range(len(ws) - n + 1)
        }
        leads = {" ".join(ws[:n]) for n in range(1, min(cfg.title_lead_words, len(ws)) + 1)}
        for g in grams:
            _add(stats, g, any_, 1.0)
        for g in leads:
            _add(stats, g, lead, 1.0)
        if c:
            for g in grams | leads:
                cats[g][c] += 1
    for phrase in catalog.phrases:
        p = normalize_text(phrase)
        if p:
            _add(stats, p, combo, 1.0)
    blocked = [normalize_text(b) for b in cfg.blocked_terms]
    keep = [
        t
        for t, row in stats.items()
        if (
            t in from_log
            or row[combo] > 0
            or (max(row[any_], row[lead]) >= cfg.min_catalog_count and not _loose(t))
        )
        and len(t) <= cfg.max_candidate_chars
        and not is_blocked(t, blocked)
    ]
    keep.sort()
    rows = np.array([stats[t] for t in keep]).reshape(len(keep), len(COLUMNS) + 1)
    columns = rows[:, : len(COLUMNS)].copy()
    columns[:, eng] = np.where(
        rows[:, seen] > 0, rows[:, eng] / np.maximum(rows[:, seen], 1e-12), 0
    )
    names = sorted({c for t in keep for c in cats.get(t, ())})
    code = {c: i for i, c in enumerate(names)}
    category = np.array(
        [code[cats[t].most_common(1)[0][0]] if cats.get(t) else -1 for t in keep], dtype=np.int32
    )
    return CandidateTable(keep, columns.astype(np.float32), category, names)


def prior_score(table: CandidateTable) -> np.ndarray:
    """The score that orders a prefix's candidates before the ranker sees the best of them."""
    col = table.column
    return (
        2.0 * np.log1p(col("pop_starts"))
        + 0.5 * np.log1p(col("cat_any"))
        + 0.5 * np.log1p(col("cat_lead"))
        + np.log1p(col("combo"))
    ).astype(np.float64)


def interests_of(categories: Sequence[str | None]) -> dict[str, float]:
    """A shopper's interests: the share of each category among the items they engaged with."""
    counts = Counter(c for c in categories if c)
    total = sum(counts.values())
    return {c: n / total for c, n in counts.items()} if total else {}
