"""Query understanding: normalize, correct spelling, read prices and attributes, guess the
category intent.

``QueryUnderstanding`` is a component (ARCHITECTURE.md section 4): it learns its spelling
vocabulary, its attribute lexicons and its intent classifier from a catalog in ``fit``, and
turns a query string into a ``ParsedQuery`` in ``__call__``. ``parse_query`` works without a
catalog, with the built-in colours, genders and price phrases only.

Example
-------
>>> q = parse_query("Men's navy shirt under $40")
>>> q.colours, q.genders, q.price_max, q.text
(('navy blue',), ('men',), 40.0, 'mens navy shirt')
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from moodboard.data.records import Product
from moodboard.errors import NotFittedError
from moodboard.understand.intent import IntentClassifier
from moodboard.understand.lexicon import Lexicon
from moodboard.understand.normalize import normalize_text
from moodboard.understand.parsed import QUERY_WORDS, ParsedQuery, QueryParser
from moodboard.understand.spelling import SpellingCorrector, count_words

_log = logging.getLogger(__name__)

__all__ = ["ParsedQuery", "QueryUnderstanding", "QueryUnderstandingConfig", "parse_query"]

FORMAT_VERSION = 1


class QueryUnderstandingConfig(BaseModel):
    """Parameters of ``QueryUnderstanding``.

    Attributes
    ----------
    spelling
        Correct spelling against the catalog's vocabulary.
    spell_min_length
        Shorter words are never corrected.
    spell_long_length
        Words at least this long are corrected up to edit distance 2, shorter ones up to 1.
    spell_background
        Leave common English words (symspellpy's bundled dictionary) alone even when the
        catalog lacks them, unless a catalog word one edit away is ``spell_background_ratio``
        times more frequent in English.
    spell_context_weight
        Weight of the catalog's word pairs with the neighbouring words when choosing among
        candidates at the same distance.
    spell_context_min_pairs
        An English word absent from the catalog is corrected when the catalog word one edit
        away makes a pair with a neighbouring word seen this many times in the catalog.
    bigram_min_count
        Word pairs seen fewer times in the catalog are not kept.
    intent
        Train the query -> category classifier (needs products with at least two categories).
    intent_c
        Inverse regularization of the logistic regression.
    intent_top_k, intent_min_probability
        How many categories ``ParsedQuery.intent`` lists, and the least probability listed.
    intent_calibration_share
        Share of the examples held out to fit the softmax temperature (0: no calibration).
    intent_min_df, intent_max_features
        Pruning of the n-gram vocabularies.
    engagement_weight
        Weight of a (query, category) engagement pair against a catalog title.
    alias_min_count, alias_min_share
        Learning article type names from the last word of titles (see ``Lexicon``).
    bare_price_ranges
        Read ``"20-40"`` and ``"20 to 40"`` without a currency as a price range.
    seed
        Seed of the intent classifier's held-out split and solver.
    """

    model_config = ConfigDict(extra="forbid")

    spelling: bool = True
    spell_min_length: int = Field(default=4, ge=1)
    spell_long_length: int = Field(default=8, ge=1)
    spell_background: bool = True
    spell_background_ratio: float = Field(default=100.0, ge=1.0)
    spell_context_weight: float = Field(default=2.0, ge=0.0)
    spell_context_min_pairs: int = Field(default=5, ge=1)
    bigram_min_count: int = Field(default=2, ge=1)
    intent: bool = True
    intent_c: float = Field(default=10.0, gt=0.0)
    intent_top_k: int = Field(default=3, ge=1)
    intent_min_probability: float = Field(default=0.05, ge=0.0, le=1.0)
    intent_calibration_share: float = Field(default=0.15, ge=0.0, lt=1.0)
    intent_min_df: int = Field(default=2, ge=1)
    intent_max_features: int = Field(default=50_000, ge=1)
    engagement_weight: float = Field(default=1.0, gt=0.0)
    alias_min_count: int = Field(default=3, ge=1)
    alias_min_share: float = Field(default=0.15, gt=0.0, le=1.0)
    bare_price_ranges: bool = True
    seed: int = 0


class QueryUnderstanding:
    """Turns query strings into ``ParsedQuery``, with what it learned from a catalog.

    Parameters
    ----------
    config
        The parameters; defaults when None.

    Examples
    --------
    >>> qu = QueryUnderstanding().fit(products)  # doctest: +SKIP
    >>> qu("mens navy shirt under 40").article_types  # doctest: +SKIP
    ('Shirts',)
    """

    def __init__(self, config: QueryUnderstandingConfig | None = None) -> None:
        self.config = config or QueryUnderstandingConfig()
        self._parser: QueryParser | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` (or ``load``) has run."""
        return self._parser is not None

    @property
    def vocabulary(self) -> Mapping[str, int]:
        """The spelling vocabulary, word -> count (empty when spelling is off).

        Raises
        ------
        NotFittedError
            If the component is not fitted.
        """
        speller = self._check_fitted().speller
        return MappingProxyType(speller.counts if speller is not None else {})

    def fit(
        self,
        products: Sequence[Product],
        queries: Sequence[str] = (),
        intents: Sequence[tuple[str, str]] = (),
    ) -> Self:
        """Learn the vocabulary, the lexicons and the intent classifier from a catalog.

        Parameters
        ----------
        products
            The catalog: titles, descriptions, brands, categories and attribute values make the
            spelling vocabulary; attributes and categories make the lexicons; titles and
            categories train the intent classifier.
        queries
            Past queries: their words join the spelling vocabulary.
        intents
            ``(query, category path)`` pairs from engagement: extra intent examples.

        Returns
        -------
        QueryUnderstanding
            ``self``, fitted.

        Raises
        ------
        ValueError
            If ``products`` is empty.
        """
        products = list(products)
        if not products:
            raise ValueError(
                "The 'products' parameter of QueryUnderstanding.fit must hold at least 1 "
                "product. Got 0 instead."
            )
        self._fit(products, list(queries), list(intents))
        _log.info(
            "query understanding fitted on %d products, %d queries, %d intent pairs",
            len(products),
            len(queries),
            len(intents),
        )
        return self

    def _fit(
        self, products: list[Product], queries: list[str], intents: list[tuple[str, str]]
    ) -> None:
        cfg = self.config
        lexicon = Lexicon.from_products(
            products, alias_min_count=cfg.alias_min_count, alias_min_share=cfg.alias_min_share
        )
        speller = self._fit_speller(products, queries, lexicon) if cfg.spelling else None
        classifier = self._fit_intent(products, intents) if cfg.intent else None
        self._parser = self._parser_of(lexicon, speller, classifier)

    def _fit_speller(
        self, products: list[Product], queries: list[str], lexicon: Lexicon
    ) -> SpellingCorrector:
        cfg = self.config
        texts = [t for p in products for t in _product_texts(p)]
        counts, bigrams = count_words([*texts, *queries], bigram_min_count=cfg.bigram_min_count)
        return SpellingCorrector.build(
            counts,
            lexicon.words() | QUERY_WORDS,
            min_length=cfg.spell_min_length,
            long_length=cfg.spell_long_length,
            background=cfg.spell_background,
            background_ratio=cfg.spell_background_ratio,
            bigrams=bigrams,
            context_weight=cfg.spell_context_weight,
            context_min_pairs=cfg.spell_context_min_pairs,
        )

    def _fit_intent(
        self, products: list[Product], intents: list[tuple[str, str]]
    ) -> IntentClassifier | None:
        cfg = self.config
        examples = [(p.title, "/".join(p.category_path)) for p in products if p.category_path]
        # each category's own names are an example of it
        paths = sorted({label for _, label in examples})
        examples += [(" ".join(path.split("/")), path) for path in paths]
        weights = [1.0] * len(examples) + [cfg.engagement_weight] * len(intents)
        examples += intents
        if len({label for _, label in examples}) < 2:
            _log.info("query understanding: fewer than 2 categories, no intent classifier")
            return None
        return IntentClassifier.train(
            [normalize_text(text) for text, _ in examples],
            [label for _, label in examples],
            weights=weights,
            c=cfg.intent_c,
            min_df=cfg.intent_min_df,
            max_features=cfg.intent_max_features,
            calibration_share=cfg.intent_calibration_share,
            seed=cfg.seed,
        )

    def _parser_of(
        self,
        lexicon: Lexicon,
        speller: SpellingCorrector | None,
        classifier: IntentClassifier | None,
    ) -> QueryParser:
        cfg = self.config
        return QueryParser(
            lexicon,
            speller,
            classifier,
            bare_price_ranges=cfg.bare_price_ranges,
            intent_top_k=cfg.intent_top_k,
            intent_min_probability=cfg.intent_min_probability,
        )

    def _check_fitted(self) -> QueryParser:
        if self._parser is None:
            raise NotFittedError(f"{type(self).__name__} isn't fitted, call fit first")
        return self._parser

    def __call__(self, text: str) -> ParsedQuery:
        """Parse one query.

        Raises
        ------
        NotFittedError
            If the component is not fitted.
        """
        return self._check_fitted().parse(text)

    def intent_distribution(self, text: str) -> dict[str, float]:
        """Every category's probability for ``text`` (the understood query text), or an empty
        dict without an intent classifier.

        Raises
        ------
        NotFittedError
            If the component is not fitted.
        """
        classifier = self._check_fitted().classifier
        if classifier is None:
            return {}
        p = classifier.proba(text)
        return {label: float(v) for label, v in zip(classifier.labels, p, strict=True)}

    def save(self, folder: Path) -> None:
        """Write the fitted model into ``folder`` as JSON and ``.npy`` files (no pickle).

        Raises
        ------
        NotFittedError
            If the component is not fitted.
        """
        parser = self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "spelling": parser.speller is not None,
            "intent": parser.classifier is not None,
        }
        _write_json(folder / "query_understanding.json", meta)
        _write_json(folder / "lexicon.json", parser.lexicon.to_json())
        if parser.speller is not None:
            _write_json(folder / "spelling.json", parser.speller.to_json())
        if parser.classifier is not None:
            parser.classifier.save(folder)
        _log.info("query understanding saved to %s", folder)

    @classmethod
    def load(cls, folder: Path) -> QueryUnderstanding:
        """A fitted model that ``save`` wrote into ``folder``.

        Raises
        ------
        FileNotFoundError
            If a file is missing.
        ValueError
            If the files were written by an unknown format version.
        """
        folder = Path(folder)
        meta = _read_json(folder / "query_understanding.json")
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"The folder {folder} must hold a query understanding model of format "
                f"{FORMAT_VERSION}. Got {meta.get('format')!r} instead."
            )
        model = cls(QueryUnderstandingConfig.model_validate(meta["config"]))
        lexicon = Lexicon.from_json(_read_json(folder / "lexicon.json"))
        speller = None
        if meta["spelling"]:
            speller = SpellingCorrector.from_json(_read_json(folder / "spelling.json"))
        classifier = IntentClassifier.load(folder) if meta["intent"] else None
        model._parser = model._parser_of(lexicon, speller, classifier)
        return model


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _product_texts(p: Product) -> list[str]:
    return [p.title, p.description or "", p.brand or "", *p.category_path, *p.attributes.values()]


@cache
def _builtin() -> QueryParser:
    return QueryParser(Lexicon.builtin())


def parse_query(text: str, model: QueryUnderstanding | None = None) -> ParsedQuery:
    """Parse a query with a fitted model, or with the built-in lexicon when ``model`` is None.

    The built-in lexicon knows colours, genders and price phrases; it corrects no spelling and
    has no article types, categories nor intent.

    Raises
    ------
    NotFittedError
        If ``model`` is given but not fitted.
    """
    if model is not None:
        return model(text)
    return _builtin().parse(text)
