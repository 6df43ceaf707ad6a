"""Attribute lexicons: the phrases of a query that name a colour, a gender, an article type or a
category, and the canonical values they stand for.

A ``Lexicon`` maps normalized phrases (``normalize.normalize_text``) to canonical values and
finds them in a token list by greedy longest match. ``Lexicon.builtin()`` knows colours and
genders only; ``Lexicon.from_products`` learns the catalog's own colour, gender and article
type values and its category paths, with singular/plural variants, a few built-in aliases
(``"tee"`` -> ``"Tshirts"``) and aliases learned from the last word of the catalog titles.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moodboard.data.records import Product
from moodboard.understand.aliases import ARTICLE_ALIASES, USAGES
from moodboard.understand.normalize import has_digit, normalize_text

_log = logging.getLogger(__name__)

#: Colour alias groups; the first member is the canonical value unless the catalog names another.
COLOURS: tuple[tuple[str, ...], ...] = (
    ("black",), ("white",), ("grey", "gray"), ("navy blue", "navy"), ("blue",), ("red",),
    ("green",), ("yellow",), ("orange",), ("purple",), ("pink",), ("brown",), ("beige",),
    ("maroon",), ("olive", "olive green"), ("silver",), ("steel",), ("cream",),
    ("gold", "golden"), ("tan",), ("charcoal", "charcoal grey"), ("khaki",),
    ("off white", "offwhite"), ("magenta",), ("copper",), ("lavender",), ("peach",), ("teal",),
    ("mustard", "mustard yellow"), ("rust",), ("coffee brown",),
    ("turquoise blue", "turquoise"), ("grey melange", "gray melange"), ("burgundy",),
    ("bronze",), ("taupe",), ("sea green",), ("metallic",), ("fluorescent green", "neon green"),
    ("skin",), ("nude",), ("mauve",), ("violet",), ("indigo",), ("aqua",), ("cyan",),
    ("lime green",), ("sky blue",), ("light blue",), ("dark blue",), ("royal blue",),
    ("baby pink",), ("hot pink",), ("dark green",), ("light green",), ("mint green",),
    ("coral",), ("ivory",), ("camel",), ("plum",), ("lilac",),
    ("fuchsia", "fuschia"), ("rose gold",), ("chrome",), ("brushed nickel",),
    ("oil rubbed bronze",), ("multi", "multicolor", "multicolour", "multi color", "multi colour",
                           "multicolored", "multicoloured", "multi colored", "multi coloured"),
)  # fmt: skip

#: Gender synonyms -> canonical values. "kids" stands for boys and girls unless the catalog
#: has a "kids" gender of its own.
GENDERS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        ("men", "mens", "man", "male", "males", "gents", "gent", "gentlemen", "gentleman",
         "for him"), ("men",)),
    **dict.fromkeys(
        ("women", "womens", "woman", "womans", "ladies", "lady", "female", "females",
         "for her"), ("women",)),
    **dict.fromkeys(("boys", "boy"), ("boys",)),
    **dict.fromkeys(("girls", "girl"), ("girls",)),
    **dict.fromkeys(("kids", "kid", "children", "childrens", "child", "childs"), ("kids",)),
    "unisex": ("unisex",),
}  # fmt: skip

#: Words whose singular means something else ("short kurta" is not Shorts).
PLURALIA = frozenset(
    ("shorts", "tights", "jeans", "pants", "leggings", "capris", "flats", "glasses",
     "sunglasses", "trousers")
)  # fmt: skip
COLOUR_KEYS = ("baseColour", "color", "colour")
GENDER_KEYS = ("gender",)
ARTICLE_KEYS = ("articleType", "article_type")
USAGE_KEYS = ("usage",)
KINDS = ("colours", "genders", "article_types", "categories", "usages")
#: Irregular plurals (``singular`` reads the others).
_IRREGULAR = {"scarves": "scarf", "knives": "knife", "wolves": "wolf", "ties": "tie"}
_STOP = frozenset(
    ("a", "an", "and", "the", "for", "with", "of", "in", "on", "to", "by", "from", "set", "pack")
)  # fmt: skip


def singular(word: str) -> str:
    """``"watches"`` -> ``"watch"``, ``"heels"`` -> ``"heel"``; other words unchanged."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word in PLURALIA or len(word) < 4 or not word.endswith("s") or word.endswith("ss"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    return word if word.endswith("us") else word[:-1]


def plural(word: str) -> str:
    """``"watch"`` -> ``"watches"``, ``"dress"`` -> ``"dresses"``, ``"heel"`` -> ``"heels"``."""
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def number_variants(phrase: str) -> set[str]:
    """The phrase with its last word in singular and plural, and without spaces."""
    words = phrase.split(" ")
    last = words[-1]
    forms = {last, singular(last)} if last.endswith("s") else {last, plural(last)}
    out = {" ".join([*words[:-1], f]) for f in forms}
    if len(words) > 1:
        out |= {p.replace(" ", "") for p in out}
    return out


def _add(index: dict[str, list[str]], phrase: str, value: str) -> None:
    if phrase and value not in index.setdefault(phrase, []):
        index[phrase].append(value)


@dataclass
class Lexicon:
    """Phrase -> canonical values, for colours, genders, article types, categories and usages.

    Attributes
    ----------
    colours, genders, article_types, categories, usages
        Normalized phrase -> canonical values, in order of preference.
    """

    colours: dict[str, list[str]] = field(default_factory=dict)
    genders: dict[str, list[str]] = field(default_factory=dict)
    article_types: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, list[str]] = field(default_factory=dict)
    usages: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def builtin(cls) -> Lexicon:
        """Colours and genders from the built-in tables; no article types nor categories."""
        return cls(colours=_colour_index(()), genders=_gender_index(()))

    @classmethod
    def from_products(
        cls,
        products: Sequence[Product],
        *,
        alias_min_count: int = 3,
        alias_min_share: float = 0.15,
    ) -> Lexicon:
        """Learn the lexicons of a catalog.

        Parameters
        ----------
        products
            The catalog.
        alias_min_count, alias_min_share
            A word that ends at least ``alias_min_count`` titles and is not a known phrase
            names the article types that make at least ``alias_min_share`` of those titles.

        Returns
        -------
        Lexicon
            Built-in colours kept when the catalog's text uses them, extended with the catalog's
            colour values; genders; the catalog's article types, category paths and usages.
        """
        colours: Counter[str] = Counter()
        genders: set[str] = set()
        usages: set[str] = set()
        articles: Counter[str] = Counter()
        paths: Counter[str] = Counter()
        words: set[str] = set()
        for p in products:
            attrs = p.attributes
            colours.update(attrs[k] for k in COLOUR_KEYS if attrs.get(k))
            genders.update(attrs[k] for k in GENDER_KEYS if attrs.get(k))
            articles.update(attrs[k] for k in ARTICLE_KEYS if attrs.get(k))
            usages.update(attrs[k] for k in USAGE_KEYS if attrs.get(k))
            if p.category_path:
                paths["/".join(p.category_path)] += 1
                articles[p.category_path[-1]] += 1
            text = " ".join([p.title, *attrs.values()])
            words.update(normalize_text(text).split(" "))
        colour_index = _colour_index(colours, words)
        article_index, heads = _article_index(articles)
        lexicon = cls(
            colours=colour_index,
            genders=_gender_index(genders),
            article_types=article_index,
            categories=_category_index(paths),
            usages=_usage_index(usages),
        )
        if articles:
            lexicon._learn_aliases(products, heads, alias_min_count, alias_min_share)
        _log.info(
            "lexicon: %d colour, %d gender, %d article type and %d category phrases",
            len(lexicon.colours),
            len(lexicon.genders),
            len(lexicon.article_types),
            len(lexicon.categories),
        )
        return lexicon

    def _learn_aliases(
        self, products: Sequence[Product], heads: set[str], min_count: int, min_share: float
    ) -> None:
        known = set(self.colours) | set(self.genders) | set(self.article_types) | _STOP
        known -= heads
        tails: dict[str, Counter[str]] = defaultdict(Counter)
        for p in products:
            article = next((p.attributes[k] for k in ARTICLE_KEYS if p.attributes.get(k)), None)
            article = article or (p.category_path[-1] if p.category_path else None)
            tokens = [t for t in normalize_text(p.title).split(" ") if t and not has_digit(t)]
            if article is not None and tokens and tokens[-1] not in known and len(tokens[-1]) > 2:
                tails[tokens[-1]][article] += 1
        n_learned = 0
        for word, counts in tails.items():
            total = sum(counts.values())
            if total < min_count:
                continue
            learned = [a for a, n in counts.most_common() if n / total >= min_share]
            rest = [a for a in self.article_types.get(word, []) if a not in learned]
            self.article_types[word] = learned + rest
            n_learned += 1
        _log.debug("lexicon: learned %d article type words from titles", n_learned)

    def find(self, tokens: Sequence[str], kind: str) -> list[str]:
        """The canonical values of ``kind`` named in ``tokens``, in order, without repeats.

        Parameters
        ----------
        tokens
            Normalized tokens.
        kind
            One of ``KINDS``: ``"colours"``, ``"genders"``, ``"article_types"``,
            ``"categories"`` or ``"usages"``.

        Raises
        ------
        ValueError
            If ``kind`` is not one of ``KINDS``.
        """
        found: list[str] = []
        for _, _, values in self.spans(tokens, kind):
            found.extend(v for v in values if v not in found)
        return found

    def spans(self, tokens: Sequence[str], kind: str) -> list[tuple[int, int, list[str]]]:
        """The phrases of ``kind`` in ``tokens`` as ``(start, end, values)``, greedy longest first.

        Raises
        ------
        ValueError
            If ``kind`` is not one of ``KINDS`` (see ``find``).
        """
        if kind not in KINDS:
            raise ValueError(
                f"The 'kind' parameter of Lexicon.find must be one of {', '.join(KINDS)}. "
                f"Got {kind!r} instead."
            )
        index: dict[str, list[str]] = getattr(self, kind)
        memo = self.__dict__.setdefault("_longest", {})  # words in the longest phrase, per
        longest = memo.get((kind, len(index)))  # kind (a query parse reads it 4 times)
        if longest is None:
            longest = memo[kind, len(index)] = max((p.count(" ") + 1 for p in index), default=0)
        out: list[tuple[int, int, list[str]]] = []
        i = 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                values = index.get(" ".join(tokens[i : i + n]))
                if values:
                    out.append((i, i + n, values))
                    i += n
                    break
            else:
                values = _joined(index, tokens, i)
                if values:
                    out.append((i, i + 2, values))
                i += 2 if values else 1
        return out

    def article_paths(self) -> dict[str, tuple[str, ...]]:
        """Last level of a category path -> the paths ending with it (``"Shirts"`` -> ...)."""
        out: dict[str, list[str]] = {}
        for path in sorted({p for values in self.categories.values() for p in values}):
            out.setdefault(path.rsplit("/", 1)[-1], []).append(path)
        return {k: tuple(v) for k, v in out.items()}

    def words(self) -> set[str]:
        """Every word of every phrase (never to be spell-corrected)."""
        phrases = [*self.colours, *self.genders, *self.article_types, *self.categories]
        phrases += [*self.usages]
        return {w for p in phrases for w in p.split(" ")}

    def to_json(self) -> dict[str, Any]:
        """The lexicon as plain JSON data."""
        return {
            "colours": self.colours,
            "genders": self.genders,
            "article_types": self.article_types,
            "categories": self.categories,
            "usages": self.usages,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lexicon:
        """The inverse of ``to_json`` (``usages`` may be missing: a lexicon saved before them).

        Raises
        ------
        KeyError
            If a section other than ``usages`` is missing.
        """
        data = {"usages": {}, **data}
        return cls(**{k: {p: list(v) for p, v in data[k].items()} for k in cls().to_json()})


def _joined(index: Mapping[str, list[str]], tokens: Sequence[str], i: int) -> list[str] | None:
    """The values of tokens ``i`` and ``i + 1`` written as one word ("sun glasses" ->
    "sunglasses"), when both have 3 letters or more and the index knows the word."""
    pair = tokens[i : i + 2]
    if len(pair) < 2 or min(len(pair[0]), len(pair[1])) < 3:
        return None
    return index.get(pair[0] + pair[1])


def _add_all(index: dict[str, list[str]], phrases: Iterable[str], value: str) -> None:
    for phrase in phrases:
        _add(index, phrase, value)


def _colour_index(catalog: Iterable[str], words: set[str] | None = None) -> dict[str, list[str]]:
    values = {normalize_text(v) for v in catalog} - {""}
    index: dict[str, list[str]] = defaultdict(list)
    for group in COLOURS:
        named = [m for m in group if m in values]
        used = words is None or named or any(set(m.split(" ")) <= words for m in group)
        if used:
            canonical = named[0] if named else group[0]
            _add_all(index, group, canonical)
    for value in sorted(values - set(index)):
        _add(index, value, value)
    return dict(index)


def _gender_index(catalog: Iterable[str]) -> dict[str, list[str]]:
    values = {normalize_text(v) for v in catalog} - {""}
    index: dict[str, list[str]] = {}
    for phrase, canon in GENDERS.items():
        if canon == ("kids",) and "kids" not in values:
            canon = ("boys", "girls")
        index[phrase] = list(canon)
    for value in sorted(values - set(index)):
        index[value] = [value]
    return index


def _article_index(articles: Counter[str]) -> tuple[dict[str, list[str]], set[str]]:
    """Phrase -> article types, and the phrases that are only a head noun ("shoes")."""
    index: dict[str, list[str]] = defaultdict(list)
    by_norm: dict[str, str] = {}
    for value, _ in articles.most_common():
        norm = normalize_text(value)
        if norm and norm not in by_norm:
            by_norm[norm] = value
            _add_all(index, number_variants(norm), value)
    known = {p: set(v) for p, v in index.items()}
    for alias, targets in ARTICLE_ALIASES.items():
        wanted = (targets,) if isinstance(targets, str) else targets
        own = [by_norm[t] for t in wanted if t in by_norm]
        if own and (alias not in known or known[alias] <= set(own)):  # keeps catalog values
            for value in own:
                _add(index, alias, value)
    # a head noun alone ("shoes") names every type it ends (casual, sports, formal shoes)
    heads: dict[str, list[str]] = defaultdict(list)
    for norm, value in by_norm.items():
        if " " in norm:
            for head in number_variants(norm.rsplit(" ", 1)[1]):
                heads[head].append(value)
    head_only = {h for h in heads if h not in index and h not in _STOP}
    for head in head_only:
        index[head] = list(heads[head])
    return dict(index), head_only


def _usage_index(catalog: Iterable[str]) -> dict[str, list[str]]:
    """The usage words (``USAGES``) of the catalog's usage values, and the values themselves."""
    values = {normalize_text(v): v for v in catalog if normalize_text(v)}
    index: dict[str, list[str]] = {}
    for phrase, canon in USAGES.items():
        if canon in values:
            index[phrase] = [values[canon]]
    for norm, value in values.items():
        index.setdefault(norm, [value])
    return index


def _category_index(paths: Counter[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = defaultdict(list)
    for path, _ in paths.most_common():
        parts = path.split("/")
        for depth in range(len(parts)):
            prefix = "/".join(parts[: depth + 1])
            _add_all(index, number_variants(normalize_text(parts[depth])), prefix)
    for phrase, values in index.items():  # keep the deepest: "Watches" -> .../Watches/Watches
        index[phrase] = [v for v in values if not any(w.startswith(v + "/") for w in values)]
    return dict(index)
