"""``ParsedQuery``, what query understanding makes of a query, and ``QueryParser``, which
makes it from a lexicon, a spelling corrector and an intent classifier.

Build parsers with ``moodboard.understand.query`` (``QueryUnderstanding`` or ``parse_query``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from moodboard.understand.intent import IntentClassifier
from moodboard.understand.lexicon import Lexicon
from moodboard.understand.normalize import normalize_text, prepare
from moodboard.understand.price import extract_prices
from moodboard.understand.spelling import SpellingCorrector

_log = logging.getLogger(__name__)

#: Words of price phrases and of query grammar, never spell-corrected.
QUERY_WORDS = frozenset(
    ("under", "below", "less", "lesser", "than", "cheaper", "lower", "upto", "within", "max",
     "maximum", "most", "over", "above", "more", "greater", "higher", "least", "min", "minimum",
     "starting", "between", "from", "until", "till", "and", "plus", "dollars", "dollar", "bucks",
     "rupees", "rupee", "price", "priced", "prices", "cost", "costs", "costing", "budget", "with",
     "without", "for", "the", "this", "that", "what", "which")
)  # fmt: skip


class ParsedQuery(BaseModel):
    """A query, understood.

    Attributes
    ----------
    raw
        The query as typed.
    normalized
        Lowercased, NFKC, punctuation stripped (``-``, ``.``, ``/`` kept inside numbers and
        codes), whitespace collapsed.
    tokens
        The words of ``normalized``.
    corrected
        ``normalized`` after spelling correction.
    corrections
        Wrong word -> right word.
    colours, genders, article_types, categories, usages
        Canonical values named by the query (lowercase colours and genders, catalog spellings of
        article types, category paths and usages; usage words inside an article type phrase,
        "casual shoes", name the article type only).
    price_min, price_max
        Price bounds read from phrases such as ``"under 50"`` or ``"$20 to $40"``.
    text
        ``corrected`` without the price phrases: what lexical and dense retrieval search.
    intent
        The most probable categories with their calibrated probabilities, best first.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    raw: str
    normalized: str
    tokens: tuple[str, ...]
    corrected: str
    corrections: dict[str, str] = Field(default_factory=dict)
    colours: tuple[str, ...] = ()
    genders: tuple[str, ...] = ()
    article_types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    usages: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    text: str = ""
    intent: tuple[tuple[str, float], ...] = ()

    def filters(self) -> dict[str, object]:
        """Hard filters: ``{"price_min": ..., "price_max": ...}``, only the bounds that are set."""
        out: dict[str, object] = {}
        if self.price_min is not None:
            out["price_min"] = self.price_min
        if self.price_max is not None:
            out["price_max"] = self.price_max
        return out

    def boosts(self) -> dict[str, tuple[str, ...]]:
        """Soft preferences: ``colours``, ``genders``, ``article_types`` and ``usages``, only
        when named."""
        found = {
            "colours": self.colours,
            "genders": self.genders,
            "article_types": self.article_types,
            "usages": self.usages,
        }
        return {k: v for k, v in found.items() if v}


@dataclass
class QueryParser:
    """Turns a query into a ``ParsedQuery`` with a lexicon and, optionally, a speller and an
    intent classifier.

    Parameters
    ----------
    lexicon
        Colours, genders, article types and categories.
    speller
        Spelling correction (None: none).
    classifier
        Category intent (None: none).
    bare_price_ranges
        Read ``"20-40"`` without a currency as a price range.
    intent_top_k, intent_min_probability
        How many categories ``ParsedQuery.intent`` lists, and the least probability listed.
    """

    lexicon: Lexicon
    speller: SpellingCorrector | None = None
    classifier: IntentClassifier | None = None
    bare_price_ranges: bool = True
    intent_top_k: int = 3
    intent_min_probability: float = 0.05
    article_paths: dict[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self.article_paths = self.lexicon.article_paths()

    def parse(self, raw: str) -> ParsedQuery:
        """Parse one query."""
        prices = extract_prices(prepare(raw), bare_ranges=self.bare_price_ranges)
        normalized = normalize_text(raw)
        tokens = normalized.split(" ") if normalized else []
        rest = normalize_text(prices.text)
        rest_tokens = rest.split(" ") if rest else []
        corrections = self.speller.correct(rest_tokens) if self.speller else {}
        words = [corrections.get(t, t) for t in rest_tokens]
        text = " ".join(words)
        articles: list[str] = []
        categories: list[str] = []
        rest_words = list(words)  # category names are looked for outside article type phrases
        for start, end, values in self.lexicon.spans(words, "article_types"):
            articles += [v for v in values if v not in articles]
            rest_words[start:end] = [""] * (end - start)
        for article in articles:
            categories += [p for p in self.article_paths.get(article, ()) if p not in categories]
        for path in self.lexicon.find(rest_words, "categories"):
            if path not in categories:
                categories.append(path)
        intent: list[tuple[str, float]] = []
        if self.classifier is not None and text:
            intent = self.classifier.top(text, self.intent_top_k, self.intent_min_probability)
        return ParsedQuery(
            raw=raw,
            normalized=normalized,
            tokens=tuple(tokens),
            corrected=" ".join(corrections.get(t, t) for t in tokens),
            corrections=corrections,
            colours=tuple(self.lexicon.find(words, "colours")),
            genders=tuple(self.lexicon.find(words, "genders")),
            article_types=tuple(articles),
            categories=tuple(categories),
            usages=tuple(self.lexicon.find(rest_words, "usages")),
            price_min=prices.price_min,
            price_max=prices.price_max,
            text=text,
            intent=tuple(intent),
        )
