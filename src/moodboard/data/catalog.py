"""The catalog as columns: what retrieval, ranking and blending read about items."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.data.idmap import IdMap


def _obj(values: Iterable[object]) -> np.ndarray:
    return np.asarray([None if v is None else str(v) for v in values], dtype=object)


def _dates(column: pa.ChunkedArray | None, n: int) -> np.ndarray:
    """A timestamp column as naive-UTC ``datetime64[us]`` (NaT where missing)."""
    if column is None:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    if column.type != pa.timestamp("us"):  # zoned, other units, strings: UTC instants in us
        column = column.cast(pa.timestamp("us"))
    return column.to_numpy().astype("datetime64[us]")


@dataclass(frozen=True)
class Catalog:
    """Immutable item columns in internal-index order.

    Attributes
    ----------
    ids
        External ids <-> internal indices.
    title, description, brand, category, image
        Object arrays (None where missing).
    price
        float64, NaN where missing.
    attributes
        Per attribute name, an object array of values (None where missing).
    created_at
        When each product was created, ``datetime64[us]`` (UTC, NaT where missing); None: a
        catalog made without dates (``from_titles``).
    """

    ids: IdMap
    title: np.ndarray
    description: np.ndarray
    brand: np.ndarray
    category: np.ndarray
    price: np.ndarray
    image: np.ndarray
    attributes: dict[str, np.ndarray] = field(default_factory=dict)
    created_at: np.ndarray | None = None
    _levels: dict[str, tuple[list[frozenset[str]], np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_table(cls, table: pa.Table) -> Catalog:
        """From a products table (``Workspace.products_table`` layout, attributes as JSON)."""
        n = table.num_rows
        names = set(table.column_names)

        def col(name: str) -> np.ndarray:
            return _obj(table.column(name).to_pylist()) if name in names else _obj([None] * n)

        attrs: dict[str, list[object]] = {}
        if C.ATTRIBUTES in names:
            for i, raw in enumerate(table.column(C.ATTRIBUTES).to_pylist()):
                for k, v in (json.loads(raw) if raw else {}).items():
                    attrs.setdefault(k, [None] * n)[i] = v
        price = (
            np.asarray(table.column(C.PRICE).to_pylist(), dtype=object)
            if C.PRICE in names
            else np.full(n, None)
        )
        return cls(
            ids=IdMap(table.column(C.ID).to_pylist()),
            title=col(C.TITLE),
            description=col(C.DESCRIPTION),
            brand=col(C.BRAND),
            category=col(C.CATEGORY),
            price=np.array([np.nan if p is None else float(p) for p in price], dtype=np.float64),
            image=col(C.IMAGE),
            attributes={k: _obj(v) for k, v in attrs.items()},
            created_at=_dates(table.column(C.CREATED_AT) if C.CREATED_AT in names else None, n),
        )

    @classmethod
    def from_titles(cls, ids: Sequence[str], titles: Sequence[str]) -> Catalog:
        """A catalog of ids and titles only (e.g. a relevance-judgment file)."""
        n = len(ids)
        none = _obj([None] * n)
        return cls(IdMap(ids), _obj(titles), none, none, none, np.full(n, np.nan), none)

    def attribute(self, name: str) -> np.ndarray:
        """One attribute's values (all None when the catalog lacks it)."""
        return self.attributes.get(name, _obj([None] * len(self)))

    def value_levels(self, name: str) -> tuple[list[frozenset[str]], np.ndarray]:
        """The distinct values of ``category`` (its path's levels) or of an attribute, each as
        the set of its lowercased levels, and each item's index among them (memoized)."""
        hit = self._levels.get(name)
        if hit is None:
            col = self.category if name == "category" else self.attribute(name)
            index: dict[object, int] = {}
            levels: list[frozenset[str]] = []
            inverse = np.empty(len(col), dtype=np.int64)
            for i, v in enumerate(col.tolist()):
                j = index.get(v)
                if j is None:
                    j = index[v] = len(levels)
                    parts = str(v).split("/") if name == "category" else [str(v)]
                    ok = v is not None and (name != "category" or bool(v))
                    levels.append(frozenset(p.lower() for p in parts) if ok else frozenset())
                inverse[i] = j
            hit = self._levels[name] = (levels, inverse)
        return hit

    def search_text(self, i: int) -> str:
        """Title, brand, category and attribute values of item ``i``, for text embeddings."""
        parts = [self.title[i], self.brand[i]]
        if self.category[i]:
            parts.append(self.category[i].replace("/", " "))
        parts += [v[i] for v in self.attributes.values()]
        return " ".join(str(p) for p in parts if p)

    def leaf_category(self) -> np.ndarray:
        """The last level of each item's category path (None where missing)."""
        return _obj(c.rsplit("/", 1)[-1] if c else None for c in self.category)
