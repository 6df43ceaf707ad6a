"""Hard item filters: the mask is each item's own test, whatever the catalog holds."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.data import IdMap, ItemFilter
from moodboard.data.catalog import Catalog

PATHS = ["Apparel/Topwear/Shirts", "apparel/Bottomwear/Jeans", "Footwear/Shoes", "", None]
COLOURS = ["Navy Blue", "navy blue", "Red", None, ""]


def _catalog(n: int, seed: int) -> Catalog:
    rng = np.random.default_rng(seed)
    obj = lambda xs: np.array(list(xs), dtype=object)  # noqa: E731
    return Catalog(
        ids=IdMap([f"p{i}" for i in range(n)]),
        title=obj(f"item {i}" for i in range(n)),
        description=obj([None] * n),
        brand=obj([None] * n),
        category=obj(PATHS[j] for j in rng.integers(0, len(PATHS), n)),
        price=np.where(rng.random(n) < 0.1, np.nan, rng.uniform(1, 100, n)),
        image=obj([None] * n),
        attributes={"baseColour": obj(COLOURS[j] for j in rng.integers(0, len(COLOURS), n))},
    )


def _one(f: ItemFilter, cat: Catalog, i: int) -> bool:
    """The filter's documented rule for one item, written out."""
    p = cat.price[i]
    if f.price_min is not None and not p >= f.price_min:
        return False
    if f.price_max is not None and not p <= f.price_max:
        return False
    for name, values in f.attributes.items():
        wanted = {v.lower() for v in values}
        if name == "category":
            c = cat.category[i]
            if not (c and any(level.lower() in wanted for level in c.split("/"))):
                return False
        else:
            v = cat.attribute(name)[i]
            if v is None or v.lower() not in wanted:
                return False
    return True


@pytest.mark.parametrize(
    "f",
    [
        ItemFilter(attributes={"category": ("topwear",)}),
        ItemFilter(attributes={"category": ("APPAREL", "shoes")}),
        ItemFilter(attributes={"baseColour": ("navy blue",), "category": ("Jeans",)}),
        ItemFilter(price_min=20, price_max=60, attributes={"baseColour": ("red", "")}),
        ItemFilter(attributes={"season": ("summer",)}),  # an attribute the catalog lacks
    ],
)
def test_the_mask_is_each_items_own_test(f: ItemFilter) -> None:
    cat = _catalog(500, 0)
    want = [_one(f, cat, i) for i in range(len(cat))]
    assert f.mask(cat).tolist() == want
    assert f.mask(cat).tolist() == want  # again, from the catalog's memo


def test_a_catalog_copied_with_other_categories_does_not_reuse_the_memo() -> None:
    from dataclasses import replace

    cat = _catalog(50, 1)
    f = ItemFilter(attributes={"category": ("shoes",)})
    assert f.mask(cat).any()
    other = replace(cat, category=np.array(["Bags/Totes"] * 50, dtype=object))
    assert not f.mask(other).any()
