"""The words shoppers use for attributes: synonyms, plurals, split compounds, usages."""

from __future__ import annotations

import pytest

from moodboard.data import Product
from moodboard.understand.lexicon import Lexicon, singular
from moodboard.understand.parsed import QueryParser

TYPES = {
    "Casual Shoes": "Casual", "Sports Shoes": "Sports", "Formal Shoes": "Formal",
    "Sunglasses": "Casual", "Trousers": "Formal", "Track Pants": "Sports",
    "Flip Flops": "Casual", "Sandals": "Casual", "Ties": "Formal", "Kurtas": "Ethnic",
    "Tshirts": "Casual", "Handbags": "Casual", "Backpacks": "Casual", "Rucksacks": "Casual",
}  # fmt: skip


@pytest.fixture(scope="module")
def parse() -> QueryParser:
    products = [
        Product(
            id=f"{a}-{g}",
            title=f"Brand {g} Black {a}",
            category=f"Apparel/Items/{a}",
            attributes={"articleType": a, "gender": g, "baseColour": "Black", "usage": u},
        )
        for a, u in TYPES.items()
        for g in ("Men", "Women")
    ]
    return QueryParser(Lexicon.from_products(products))


@pytest.mark.parametrize(
    ("query", "articles"),
    [
        ("black sneakers for women", {"Casual Shoes", "Sports Shoes"}),
        ("mens shades", {"Sunglasses"}),
        ("sun glasses", {"Sunglasses"}),  # written apart
        ("navy pants", {"Trousers"}),
        ("grey joggers", {"Track Pants"}),
        ("flipflops", {"Flip Flops"}),
        ("ladies slippers", {"Flip Flops"}),
        ("red tie", {"Ties"}),
        ("kurta for men", {"Kurtas"}),
        ("rucksack", {"Backpacks", "Rucksacks"}),  # an alias may widen a catalog value
    ],
)
def test_shopper_words_name_article_types(parse: QueryParser, query: str, articles) -> None:
    assert set(parse.parse(query).article_types) == articles


def test_usage_words_outside_article_type_phrases(parse: QueryParser) -> None:
    q = parse.parse("formal black trousers for men")
    assert (q.usages, q.article_types, q.genders) == (("Formal",), ("Trousers",), ("men",))
    assert parse.parse("sporty tshirts").usages == ("Sports",)
    assert parse.parse("black casual shoes for women").usages == ()  # the type's own word
    assert parse.parse("casual sports shoes").usages == ("Casual",)


def test_singular_of_short_and_irregular_plurals() -> None:
    assert [singular(w) for w in ("ties", "scarves", "dresses", "watches", "bodies")] == [
        "tie", "scarf", "dress", "watch", "body",
    ]  # fmt: skip


def test_a_lexicon_saved_before_usages_still_loads(parse: QueryParser) -> None:
    data = parse.lexicon.to_json()
    del data["usages"]
    assert Lexicon.from_json(data).usages == {}
