"""``lexical/bm25``: BM25 over title, description, brand, category and attributes (tantivy).

English stemming, a boost per field, fuzzy matching of long words for typos, and filters
(price range, attribute values) as required clauses of the same query, so they apply inside
retrieval.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import tantivy
from pydantic import Field

from moodboard.data import Candidates, ItemFilter
from moodboard.errors import ConfigError
from moodboard.retrieve.base import CandidateSource, SourceConfig, SourceQuery, TrainingData

_log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
TEXT_FIELDS = ("title", "description", "brand", "category", "attrs")


class LexicalConfig(SourceConfig):
    """BM25 parameters (``[retrieve.lexical]``): a boost per field, the tokenizer, fuzzy
    matching of words of ``fuzzy_min_length`` letters or more for typos, the attributes a
    query may filter on, and the indexing memory."""

    field_boosts: dict[str, float] = Field(
        default_factory=lambda: {
            "title": 3.0,
            "description": 1.0,
            "brand": 2.0,
            "category": 1.5,
            "attrs": 1.0,
        }
    )
    tokenizer: str = "en_stem"
    fuzzy: bool = True
    fuzzy_min_length: int = Field(default=5, ge=3)
    fuzzy_boost: float = Field(default=0.3, ge=0)
    filter_attributes: tuple[str, ...] = (
        "gender",
        "articleType",
        "baseColour",
        "usage",
        "season",
        "masterCategory",
        "subCategory",
    )
    writer_heap_mb: int = Field(default=256, ge=16)


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _WORD.findall(text or "")]


class BM25Source(CandidateSource):
    """Lexical retrieval on tantivy; fitted on ``TrainingData.catalog``, saved as the index."""

    kind = "lexical/bm25"
    Config = LexicalConfig
    config: LexicalConfig

    def _schema(self) -> tantivy.Schema:
        b = tantivy.SchemaBuilder()
        for f in TEXT_FIELDS:
            b.add_text_field(f, stored=False, tokenizer_name=self.config.tokenizer)
        b.add_unsigned_field("idx", stored=True, indexed=True, fast=True)
        b.add_float_field("price", stored=False, indexed=True, fast=True)
        for a in self.config.filter_attributes:
            b.add_text_field(f"f_{a}", stored=False, tokenizer_name="raw")
        b.add_text_field("f_category", stored=False, tokenizer_name="raw")
        return b.build()

    def _fit(self, data: TrainingData) -> None:
        catalog = data.catalog
        if catalog is None:
            raise ConfigError(f"{self.name} indexes a catalog: fit(TrainingData(catalog=...)).")
        schema = self._schema()
        path = Path(tempfile.mkdtemp(prefix="moodboard-bm25-"))
        weakref.finalize(self, shutil.rmtree, path, True)
        index = tantivy.Index(schema, path=str(path))
        writer = index.writer(heap_size=self.config.writer_heap_mb * 1_000_000, num_threads=1)
        attrs = list(catalog.attributes.values())
        filters = {
            a: catalog.attributes[a]
            for a in self.config.filter_attributes
            if a in catalog.attributes
        }
        for i in range(len(catalog)):
            doc = tantivy.Document()
            doc.add_unsigned("idx", i)
            for f, col in (
                ("title", catalog.title),
                ("description", catalog.description),
                ("brand", catalog.brand),
            ):
                if col[i]:
                    doc.add_text(f, col[i])
            if catalog.category[i]:
                doc.add_text("category", catalog.category[i].replace("/", " "))
                for p in catalog.category[i].split("/"):
                    doc.add_text("f_category", p.lower())
            values = [str(a[i]) for a in attrs if a[i]]
            if values:
                doc.add_text("attrs", " ".join(values))
            for a, col in filters.items():
                if col[i]:
                    doc.add_text(f"f_{a}", col[i].lower())
            if np.isfinite(catalog.price[i]):
                doc.add_float("price", float(catalog.price[i]))
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self._index = index
        self._schema_obj = schema
        self._path = path
        _log.info("indexed %d items with tantivy", len(catalog))

    def _save(self, folder: Path) -> dict[str, Any]:
        """Copy the on-disk index into ``folder``."""
        if self._path != folder:
            shutil.copytree(self._path, folder, dirs_exist_ok=True)
        return {}

    def _load(self, folder: Path, state: dict[str, Any]) -> None:
        self._index = tantivy.Index.open(str(folder))
        self._schema_obj = self._index.schema
        self._path = folder

    def _filter_queries(self, f: ItemFilter) -> list[tantivy.Query]:
        qs = []
        if f.price_min is not None or f.price_max is not None:
            qs.append(
                tantivy.Query.range_query(
                    self._schema_obj,
                    "price",
                    tantivy.FieldType.Float,
                    float(f.price_min) if f.price_min is not None else 0.0,
                    float(f.price_max) if f.price_max is not None else 1e18,
                )
            )
        for name, values in f.attributes.items():
            field = f"f_{name}"
            if name != "category" and name not in self.config.filter_attributes:
                raise ValueError(
                    f"lexical/bm25 cannot filter on {name!r}; it filters on "
                    f"{['category', *self.config.filter_attributes]}."
                )
            qs.append(
                tantivy.Query.term_set_query(self._schema_obj, field, [v.lower() for v in values])
            )
        return qs

    def allowed(self, query: SourceQuery) -> np.ndarray | None:
        """None: the index applies the query's filter and exclusions itself (``_retrieve``),
        so no mask over the catalog is made."""
        return None

    def text_query(self, text: str, fuzzy: bool = True) -> tantivy.Query | None:
        """The scoring part of the query: BM25 over the fields, plus fuzzy terms (when the
        config and ``fuzzy`` both allow them)."""
        words = _tokens(text)
        if not words:
            return None
        q, _errors = self._index.parse_query_lenient(
            " ".join(words),
            default_field_names=list(TEXT_FIELDS),
            field_boosts=self.config.field_boosts,
        )
        if not (self.config.fuzzy and fuzzy):
            return q
        typos = [
            (
                tantivy.Occur.Should,
                tantivy.Query.fuzzy_term_query(
                    self._schema_obj, "title", w, distance=1 if len(w) < 8 else 2
                ),
            )
            for w in words
            if len(w) >= self.config.fuzzy_min_length and not w.isdigit()
        ]
        if not typos:
            return q
        fq = tantivy.Query.boost_query(tantivy.Query.boolean_query(typos), self.config.fuzzy_boost)
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q), (tantivy.Occur.Should, fq)])

    def _retrieve(self, query: SourceQuery, k: int, allowed: np.ndarray | None) -> Candidates:
        tq = self.text_query(query.text or "", query.fuzzy)
        if tq is None:
            return Candidates.empty()
        clauses = [(tantivy.Occur.Must, tq)]
        if query.item_filter is not None:
            clauses += [
                (tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0))
                for f in self._filter_queries(query.item_filter)
            ]
        if query.exclude is not None and len(query.exclude):
            clauses.append(
                (
                    tantivy.Occur.MustNot,
                    tantivy.Query.term_set_query(
                        self._schema_obj, "idx", [int(i) for i in query.exclude]
                    ),
                )
            )
        searcher = self._index.searcher()
        hits = searcher.search(tantivy.Query.boolean_query(clauses), limit=k, count=False).hits
        if not hits:
            return Candidates.empty()
        idx = searcher.fast_field_values("idx", [addr for _, addr in hits])  # no stored doc read
        return Candidates.from_scores(np.asarray(idx), np.asarray([s for s, _ in hits]), self.name)
