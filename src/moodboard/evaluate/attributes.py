"""Attribute-query precision: do queries that name a colour, an article type, a gender or a
usage put the items that have every named value first?

The query set is built from the catalog's own attribute combinations: every subset of 1 to 3 of
``baseColour``, ``articleType``, ``gender`` and ``usage`` whose values at least ``min_items``
products share. A seeded sample of the combinations is split in two halves (``tune`` and
``held_out``) and each combination is phrased the ways shoppers write it:

- ``canonical``: the catalog's values, lowercased (``"women red dresses"``);
- ``plural``: the article type's last word in the other number (``"women red dress"``);
- ``gender_word``: the gender as shoppers write it (``"mens"``, ``"men's"``, ``"for women"``,
  ``"ladies"``, ``"for her"``);
- ``synonym``: an article type or colour alias (``"sneakers"``, ``"shades"``, ``"pants"``,
  ``"flipflops"``, ``"navy"``, ``"gray"``) from ``SYNONYMS``;
- ``held_out_synonym``: aliases from ``HELD_OUT_SYNONYMS``, which the product's lexicon was
  never tuned on (``"slacks"``, ``"wrist watch"``, ``"canvas shoes"``).

Each query runs through the served search chain (``Engine.search``: the surface ``/search``
runs) and scores precision@10: the share of its first 10 results whose attributes are all
among the accepted values (a synonym naming two types, ``"sneakers"``, accepts both). Gender is
strict: a unisex product does not count for a men's or women's query.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import Catalog, Request
from moodboard.errors import InputError
from moodboard.surfaces import Surface
from moodboard.understand.lexicon import PLURALIA, plural, singular

_log = logging.getLogger(__name__)

__all__ = [
    "ATTRIBUTES",
    "KINDS",
    "AttributeEvalConfig",
    "AttributeQuery",
    "AttributeReport",
    "attribute_precision",
    "attribute_queries",
]

#: The attributes queries are built from, in the order a phrase names them.
ATTRIBUTES = ("gender", "usage", "baseColour", "articleType")
KINDS = ("canonical", "plural", "gender_word", "synonym", "held_out_synonym")

#: How shoppers name a gender (``gender_word`` phrasings): prefix forms and ``for`` forms.
GENDER_WORDS: dict[str, tuple[str, ...]] = {
    "Men": ("mens", "men's", "for men", "for him", "gents", "man"),
    "Women": ("womens", "women's", "ladies", "for women", "for her", "woman"),
    "Boys": ("boys'", "for boys", "boy"),
    "Girls": ("girls'", "for girls", "girl"),
}

#: Aliases of article types and colours (``synonym`` phrasings): phrase -> the values it names.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "sneakers": ("Casual Shoes", "Sports Shoes"),
    "trainers": ("Casual Shoes", "Sports Shoes"),
    "running shoes": ("Sports Shoes",),
    "loafers": ("Casual Shoes",),
    "shades": ("Sunglasses",),
    "pants": ("Trousers",),
    "flipflops": ("Flip Flops",),
    "flip flop": ("Flip Flops",),
    "slippers": ("Flip Flops",),
    "tee": ("Tshirts",),
    "t-shirts": ("Tshirts",),
    "t shirt": ("Tshirts",),
    "purse": ("Handbags",),
    "hoodie": ("Sweatshirts",),
    "jumper": ("Sweaters",),
    "joggers": ("Track Pants",),
    "vest": ("Innerwear Vests",),
    "stilettos": ("Heels",),
    "hand bag": ("Handbags",),
    "rucksack": ("Backpacks", "Rucksacks"),
    "frock": ("Dresses",),
    "chappals": ("Flip Flops", "Sandals"),
    "underwear": ("Briefs", "Trunk", "Boxers", "Innerwear Vests", "Bra"),
    "blouse": ("Tops",),
    "dress shoes": ("Formal Shoes",),
    "navy": ("Navy Blue",),
    "gray": ("Grey",),
    "golden": ("Gold",),
    "offwhite": ("Off White",),
    "multicolor": ("Multi",),
}

#: Aliases kept out of the product's lexicon: the honest part of the figure.
HELD_OUT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "slacks": ("Trousers",),
    "chinos": ("Trousers",),
    "sweatpants": ("Track Pants",),
    "wrist watch": ("Watches",),
    "canvas shoes": ("Casual Shoes",),
    "sun glasses": ("Sunglasses",),
    "shoulder bag": ("Handbags",),
    "tote bag": ("Handbags",),
    "school bag": ("Backpacks",),
    "high heels": ("Heels",),
    "polo tshirts": ("Tshirts",),
    "grey colour": ("Grey",),
    "blue coloured": ("Blue",),
    "navy-blue": ("Navy Blue",),
}


class AttributeEvalConfig(BaseModel):
    """Parameters of the attribute-query set.

    Attributes
    ----------
    combos
        Attribute combinations sampled (all when fewer exist).
    min_items
        A combination is kept when at least this many products have all its values.
    max_attributes
        Most attributes a combination names (1 to 4).
    k
        Precision at ``k``.
    seed
        Seed of the sample, the split and the phrasings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    combos: int = Field(default=200, ge=1, le=10_000)
    min_items: int = Field(default=10, ge=1)
    max_attributes: int = Field(default=3, ge=1, le=4)
    k: int = Field(default=10, ge=1, le=100)
    seed: int = 0


@dataclass(frozen=True)
class AttributeQuery:
    """One phrasing of one combination: its text, kind, split and accepted values."""

    text: str
    kind: str
    split: str
    wanted: Mapping[str, tuple[str, ...]]

    @property
    def combo(self) -> str:
        """``attribute=value|...`` of the accepted values."""
        return "|".join(f"{a}={'/'.join(v)}" for a, v in self.wanted.items())


@dataclass
class AttributeReport:
    """Precision@k overall, per kind, per split and per number of attributes."""

    k: int
    overall: float
    queries: int
    combos: int
    by_kind: dict[str, dict[str, float]]
    by_split: dict[str, dict[str, float]]
    by_size: dict[str, dict[str, float]]
    worst: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "k": self.k,
            f"precision@{self.k}": self.overall,
            "queries": self.queries,
            "combos": self.combos,
            "by_kind": self.by_kind,
            "by_split": self.by_split,
            "by_size": self.by_size,
            "worst": self.worst,
            "params": self.params,
        }


def _combos(catalog: Catalog, cfg: AttributeEvalConfig) -> list[dict[str, str]]:
    """Every combination of 1 to ``max_attributes`` attribute values that at least
    ``min_items`` products share, except a usage its article type already says."""
    cols = {a: catalog.attribute(a) for a in ATTRIBUTES}
    counts: Counter[tuple[tuple[str, str], ...]] = Counter()
    for i in range(len(catalog)):
        values = [(a, cols[a][i]) for a in ATTRIBUTES if cols[a][i]]
        for size in range(1, cfg.max_attributes + 1):
            counts.update(itertools.combinations(values, size))
    out = []
    for combo, n in sorted(counts.items()):
        d = dict(combo)
        usage, article = d.get("usage", ""), d.get("articleType", "")
        if n >= cfg.min_items and not (usage and usage.lower() in article.lower()):
            out.append(d)
    return out


#: Plurals whose singular the rule of ``lexicon.singular`` misses (fixed there too; kept here so
#: the query set is the same before and after that fix).
_SINGULAR = {"ties": "tie", "scarves": "scarf"}


def _other_number(article: str) -> str | None:
    """The article type with its last word in the other number, or None when that is the same
    (``"Jeans"``) or not a word shoppers use."""
    words = article.lower().split(" ")
    last = words[-1]
    if last in PLURALIA or len(words) > 2:
        return None
    other = _SINGULAR.get(last) or (singular(last) if last.endswith("s") else plural(last))
    return None if other == last else " ".join([*words[:-1], other])


def _phrase(words: Mapping[str, str], gender_last: bool = False) -> str:
    """The words in shopper order: gender, usage, colour, article type (a ``for`` gender last)."""
    gender = words.get("gender", "")
    parts = [words[a] for a in ATTRIBUTES[1:] if words.get(a)]
    if gender and (gender_last or gender.startswith("for ")):
        return " ".join([*parts, gender])
    return " ".join([gender, *parts] if gender else parts)


def _phrasings(
    combo: dict[str, str], rng: np.random.Generator
) -> list[tuple[str, str, dict[str, tuple[str, ...]]]]:
    """``(text, kind, wanted)`` of every kind that applies to ``combo``."""
    base = {a: v.lower() for a, v in combo.items()}
    wanted = {a: (v,) for a, v in combo.items()}
    out = [(_phrase(base), "canonical", wanted)]
    seen = {out[0][0]}
    article, colour = combo.get("articleType"), combo.get("baseColour")
    if article and (other := _other_number(article)):
        out.append((_phrase(base | {"articleType": other}), "plural", wanted))
        seen.add(out[-1][0])
    gender = combo.get("gender")
    if gender in GENDER_WORDS:
        word = str(rng.choice(GENDER_WORDS[gender]))
        out.append((_phrase(base | {"gender": word}), "gender_word", wanted))
    for kind, table in (("synonym", SYNONYMS), ("held_out_synonym", HELD_OUT_SYNONYMS)):
        options = [
            (attr, phrase, targets)
            for attr, value in (("articleType", article), ("baseColour", colour))
            if value
            for phrase, targets in table.items()
            if value in targets
        ]
        if options:
            attr, phrase, targets = options[int(rng.integers(len(options)))]
            text = _phrase(base | {attr: phrase})
            if text not in seen:
                out.append((text, kind, wanted | {attr: targets}))
    return out


def attribute_queries(
    catalog: Catalog, config: AttributeEvalConfig | None = None
) -> list[AttributeQuery]:
    """The query set of ``catalog``: its combinations' phrasings (see the module docstring).

    Raises
    ------
    InputError
        If no combination has ``min_items`` products (a catalog without these attributes).
    """
    cfg = config or AttributeEvalConfig()
    combos = _combos(catalog, cfg)
    if not combos:
        raise InputError(
            f"The catalog must have products sharing attribute values ({', '.join(ATTRIBUTES)}) "
            f"at least {cfg.min_items} at a time. Got no such combination instead."
        )
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(combos))[: cfg.combos]
    out: list[AttributeQuery] = []
    for n, j in enumerate(order):
        split = "tune" if n % 2 == 0 else "held_out"
        for text, kind, wanted in _phrasings(combos[j], rng):
            out.append(AttributeQuery(text, kind, split, wanted))
    return out


def _matches(catalog: Catalog, items: np.ndarray, wanted: Mapping[str, tuple[str, ...]]) -> int:
    ok = np.ones(len(items), dtype=bool)
    for attr, values in wanted.items():
        ok &= np.isin(catalog.attribute(attr)[items].astype(str), list(values))
    return int(ok.sum())


def _mean(values: Sequence[float]) -> dict[str, float]:
    return {"precision": round(float(np.mean(values)), 4), "queries": len(values)}


def attribute_precision(
    chain: Surface,
    queries: Sequence[AttributeQuery],
    k: int = 10,
    progress: Callable[[str], None] | None = None,
) -> AttributeReport:
    """Precision@k of ``chain``'s pages for ``queries``.

    Parameters
    ----------
    chain
        A search chain (``Engine.search``): each query's page is its ``run`` order.
    queries
        From ``attribute_queries``.
    k
        The page size scored.
    progress
        Called with a message every 100 queries.

    Returns
    -------
    AttributeReport
        The means, and the 20 worst queries with their first results' attributes.

    Raises
    ------
    ValueError
        If ``queries`` is empty.
    """
    if not queries:
        raise ValueError("The 'queries' parameter must hold at least 1 query. Got 0 instead.")
    catalog = chain.env.catalog
    t0 = time.perf_counter()
    scores: list[float] = []
    pages: list[np.ndarray] = []
    for n, q in enumerate(queries):
        if progress is not None and n % 100 == 0:
            progress(f"query {n + 1:,} of {len(queries):,}")
        items = chain.run(Request(surface="search", query=q.text, k=k)).candidates.items[:k]
        pages.append(items)
        scores.append(_matches(catalog, items, q.wanted) / k)
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for q, s in zip(queries, scores, strict=True):
        groups["kind"][q.kind].append(s)
        groups["split"][q.split].append(s)
        groups["size"][str(len(q.wanted))].append(s)
    worst = []
    for j in np.argsort(scores, kind="stable")[:20]:
        q = queries[j]
        first = ["/".join(str(catalog.attribute(a)[i]) for a in q.wanted) for i in pages[j][:3]]
        worst.append({"query": q.text, "kind": q.kind, "wanted": q.combo,
                      "precision": scores[j], "first": first})  # fmt: skip
    return AttributeReport(
        k=k,
        overall=round(float(np.mean(scores)), 4),
        queries=len(queries),
        combos=len({q.combo for q in queries if q.kind == "canonical"}),
        by_kind={g: _mean(groups["kind"][g]) for g in KINDS if g in groups["kind"]},
        by_split={g: _mean(v) for g, v in sorted(groups["split"].items())},
        by_size={g: _mean(v) for g, v in sorted(groups["size"].items())},
        worst=worst,
        params={"seconds": round(time.perf_counter() - t0, 1)},
    )
