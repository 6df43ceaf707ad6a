"""Per (query, item) features of search ranking, one definition for training and serving.

``ItemTexts`` is fitted once per catalog (stemmed title tokens, numbers, trigrams);
``SearchFeatures`` turns one query's context and its fused candidates into a feature matrix
whose columns are ``FEATURES``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tantivy

from moodboard.data import Candidates, Catalog
from moodboard.data import columns as C
from moodboard.understand.parsed import ParsedQuery

FEATURES: tuple[str, ...] = (
    "bm25",
    "bm25_rrank",
    "bm25_norm",
    "dense",
    "dense_rrank",
    "dense_gap",
    "fused",
    "coverage",
    "coverage_idf",
    "coverage_all",
    "last_word",
    "title_head",
    "phrase",
    "numbers",
    "trigram",
    "bigram",
    "tail",
    "compound",
    "units",
    "query_len",
    "title_len",
    "attr_match",
    "intent",
    "price_fit",
    "popularity",
)
_NUM = re.compile(r"\d")
#: Unit words folded to one spelling, so "6 feet" matches "6 ft." (stems, lowercased).
UNITS = {
    "inch": "in", "inches": "in", "feet": "ft", "foot": "ft", "gallon": "gal", "pound": "lb",
    "lbs": "lb", "ounc": "oz", "ounce": "oz", "volt": "v", "watt": "w", "amp": "a", "amper": "a",
    "squar": "sq", "cubic": "cu", "millimet": "mm", "centimet": "cm", "meter": "m", "yard": "yd",
}  # fmt: skip

_ANALYZER = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.lowercase())
    .filter(tantivy.Filter.stemmer("english"))
    .build()
)


def stems(text: str | None) -> list[str]:
    """Lowercased English stems, the way ``lexical/bm25`` indexes text."""
    return _ANALYZER.analyze(text) if text else []


def bigrams(words: Sequence[str]) -> set[str]:
    """Adjacent word pairs, and each pair written as one word (for "door knob" ~ "doorknob")."""
    pairs = list(itertools.pairwise(words))
    return {f"{a} {b}" for a, b in pairs} | {a + b for a, b in pairs}


def trigrams(text: str) -> set[str]:
    """Character trigrams of the lowercased, space-padded text."""
    t = f" {' '.join((text or '').lower().split())} "
    return {t[i : i + 3] for i in range(len(t) - 2)}


@dataclass
class ItemTexts:
    """Per-item text facts used by the features, computed once per catalog."""

    stems: list[frozenset[str]]
    numbers: list[frozenset[str]]
    lower: list[str]
    length: np.ndarray
    idf: dict[str, float] = field(default_factory=dict)
    head: list[str] = field(default_factory=list)
    bigrams: list[frozenset[str]] = field(default_factory=list)
    tail: list[frozenset[str]] = field(default_factory=list)
    units: list[frozenset[str]] = field(default_factory=list)
    _trigrams: dict[int, set[str]] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> ItemTexts:
        """Analyze every title."""
        st, nums, low, bi, tail, units = [], [], [], [], [], []
        for t in catalog.title:
            s = stems(t)
            st.append(frozenset(s))
            bi.append(frozenset(bigrams(s)))
            tail.append(frozenset(s[-3:]))
            units.append(frozenset(UNITS.get(w, w) for w in s))
            nums.append(frozenset(w for w in s if _NUM.search(w)))
            low.append(" ".join((t or "").lower().split()))
        df: dict[str, int] = {}
        for s in st:
            for w in s:
                df[w] = df.get(w, 0) + 1
        n = max(len(st), 1)
        idf = {w: float(np.log((n + 1) / (c + 0.5))) for w, c in df.items()}
        head = [
            next(iter(stems(" ".join((t or "").split()[:1]))), "") if t else ""
            for t in catalog.title
        ]
        length = np.array([len(s) for s in st], dtype=np.float32)
        return cls(st, nums, low, length, idf, head, bi, tail, units)

    def idf_of(self, word: str) -> float:
        """Inverse document frequency of a stem over the titles (unseen words: the maximum)."""
        return self.idf.get(word, float(np.log(len(self.stems) + 1.0)))

    def trigrams(self, i: int) -> set[str]:
        """Trigrams of item ``i``'s title (memoized)."""
        t = self._trigrams.get(i)
        if t is None:
            t = self._trigrams[i] = trigrams(self.lower[i])
        return t


@dataclass(frozen=True)
class QueryContext:
    """What the features know about the query.

    Attributes
    ----------
    text
        The query text used for retrieval.
    vector
        Its embedding (None when there is no dense model).
    colours, genders, article_types
        Attribute values extracted by query understanding.
    intent
        Category -> probability from the intent classifier.
    price_min, price_max
        Price bounds from the query.
    """

    text: str
    vector: np.ndarray | None = None
    colours: tuple[str, ...] = ()
    genders: tuple[str, ...] = ()
    article_types: tuple[str, ...] = ()
    intent: Mapping[str, float] = field(default_factory=dict)
    price_min: float | None = None
    price_max: float | None = None


def query_context(parsed: ParsedQuery, vector: np.ndarray | None = None) -> QueryContext:
    """What the features know of an understood query (its retrieval text, attributes, intent).

    Parameters
    ----------
    parsed
        The query understood by ``QueryUnderstanding``.
    vector
        The embedding of the retrieval text (None without a dense model).
    """
    return QueryContext(
        text=parsed.text or parsed.corrected or parsed.raw,
        vector=vector,
        colours=parsed.colours,
        genders=parsed.genders,
        article_types=parsed.article_types,
        intent=dict(parsed.intent),
        price_min=parsed.price_min,
        price_max=parsed.price_max,
    )


#: The features computed title by title: a run of ``FEATURES``, written as one block.
PER_TITLE = FEATURES[FEATURES.index("coverage") : FEATURES.index("units") + 1]


class SearchFeatures:
    """The feature matrix of one query's candidates.

    Parameters
    ----------
    catalog
        The items.
    texts
        ``ItemTexts.from_catalog(catalog)``.
    item_vectors
        Item embeddings for the ``dense`` feature (None: 0).
    popularity
        Per-item popularity (None: 0).
    lexical, dense
        The source names whose scores and ranks become ``bm25*`` and ``dense*``.
    """

    def __init__(
        self,
        catalog: Catalog,
        texts: ItemTexts,
        item_vectors: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
        lexical: str = "lexical/bm25",
        dense: str = "dense/text",
    ) -> None:
        self.catalog = catalog
        self.texts = texts
        self.item_vectors = item_vectors
        self.popularity = popularity
        self.lexical = lexical
        self.dense = dense
        self._colour = catalog.attribute("baseColour")
        self._gender = catalog.attribute("gender")
        self._type = catalog.attribute("articleType")

    @staticmethod
    def _rrank(scores: np.ndarray) -> np.ndarray:
        present = np.isfinite(scores)
        out = np.zeros(len(scores), dtype=np.float32)
        if present.any():
            order = np.argsort(-np.where(present, scores, -np.inf), kind="stable")
            ranks = np.empty(len(scores))
            ranks[order] = np.arange(1, len(scores) + 1)
            out[present] = 1.0 / ranks[present]
        return out

    def __call__(self, ctx: QueryContext, cand: Candidates) -> np.ndarray:
        """A float32 matrix, one row per candidate, columns ``FEATURES``."""
        n = len(cand)
        X = np.zeros((n, len(FEATURES)), dtype=np.float32)
        if n == 0:
            return X
        items = cand.items
        col = {f: j for j, f in enumerate(FEATURES)}
        for name, src in (("bm25", self.lexical), ("dense", self.dense)):
            if src in cand.scores:
                s = cand.scores[src].astype(np.float64)
                X[:, col[f"{name}_rrank"]] = self._rrank(s)
                X[:, col[name]] = np.nan_to_num(s, nan=0.0)
        if self.item_vectors is not None and ctx.vector is not None:
            X[:, col["dense"]] = self.item_vectors[items] @ np.asarray(ctx.vector, np.float32)
        b = X[:, col["bm25"]]
        X[:, col["bm25_norm"]] = b / b.max() if b.max() > 0 else 0.0
        d = X[:, col["dense"]]
        X[:, col["dense_gap"]] = d - d.max()
        X[:, col["fused"]] = cand.scores.get(C.RETRIEVAL, np.zeros(n))
        q = stems(ctx.text)
        qset = set(q)
        qnums = {w for w in qset if _NUM.search(w)}
        qlow = " ".join(ctx.text.lower().split())
        qtri = trigrams(ctx.text)
        qidf = {w: self.texts.idf_of(w) for w in qset}
        qidf_total = sum(qidf.values()) or 1.0
        last = q[-1] if q else None
        qbi = {b for b in bigrams(q) if " " in b}
        qjoined = {b for b in bigrams(q) if " " not in b}
        qunits = {UNITS.get(w, w) for w in qset}
        X[:, col["query_len"]] = len(q)
        X[:, col["title_len"]] = self.texts.length[items]
        texts, nq = self.texts, len(qset)
        rows = []  # one tuple per candidate, columns as in PER_TITLE (numpy writes at the end)
        for i in items.tolist():
            ts, tb = texts.stems[i], texts.bigrams[i]
            hit = qset & ts
            it = texts.trigrams(i)
            common = len(qtri & it)
            rows.append((
                len(hit) / nq if nq else 0.0,
                sum(qidf[w] for w in hit) / qidf_total,
                float(bool(qset) and len(hit) == nq),
                float(last is not None and last in ts),
                float(bool(texts.head[i]) and texts.head[i] in qset),
                float(bool(qlow) and qlow in texts.lower[i]),
                len(qnums & texts.numbers[i]) / len(qnums) if qnums else -1.0,
                common / (len(qtri) + len(it) - common) if qtri else 0.0,
                len(qbi & tb) / len(qbi) if qbi else -1.0,
                len(qset & texts.tail[i]) / nq if nq else 0.0,
                len(qjoined & ts) + len(qset & tb),
                len(qunits & texts.units[i]) / len(qunits) if qunits else 0.0,
            ))  # fmt: skip
        first = col[PER_TITLE[0]]
        X[:, first : first + len(PER_TITLE)] = np.asarray(rows, dtype=np.float32)
        X[:, col["attr_match"]] = self._attr_matches(ctx, items)
        if ctx.intent:  # per distinct category of the candidates, then spread to them
            found = [c or "" for c in self.catalog.category[items].tolist()]
            cats, which = np.unique(np.asarray(found, dtype=str), return_inverse=True)
            best = [
                max(
                    (
                        p
                        for c, p in ctx.intent.items()
                        if cat and (cat == c or cat.startswith(c + "/"))
                    ),
                    default=0.0,
                )
                for cat in cats.tolist()
            ]
            X[:, col["intent"]] = np.asarray(best, dtype=np.float32)[which]
        price = self.catalog.price[items]
        if ctx.price_min is not None or ctx.price_max is not None:
            lo = ctx.price_min if ctx.price_min is not None else -np.inf
            hi = ctx.price_max if ctx.price_max is not None else np.inf
            with np.errstate(invalid="ignore"):
                X[:, col["price_fit"]] = np.where(
                    np.isnan(price), 0.0, np.where((price >= lo) & (price <= hi), 1, -1)
                )
        if self.popularity is not None:
            X[:, col["popularity"]] = np.log1p(np.maximum(self.popularity[items], 0))
        return X

    def _attr_matches(self, ctx: QueryContext, items: np.ndarray) -> np.ndarray:
        out = np.zeros(len(items), dtype=np.float32)
        for wanted, values in (
            (ctx.colours, self._colour),
            (ctx.genders, self._gender),
            (ctx.article_types, self._type),
        ):
            if not wanted:
                continue
            w = {v.lower() for v in wanted}
            vals = values[items]
            titles = [self.texts.lower[i] for i in items.tolist()]
            out += np.array(
                [
                    (v is not None and v.lower() in w) or any(x in t for x in w)
                    for v, t in zip(vals, titles, strict=True)
                ],
                dtype=np.float32,
            )
        return out


def feature_names() -> Sequence[str]:
    """The feature column names, in order."""
    return FEATURES
