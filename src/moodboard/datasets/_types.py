"""The containers the public-dataset loaders return: ``CatalogData`` and ``SeqRecData``."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.data.records import Product

_log = logging.getLogger(__name__)


def string_table(columns: dict[str, Sequence[str | None]]) -> pa.Table:
    """A table of nullable string columns, in the order given."""
    return pa.table({name: pa.array(values, type=pa.string()) for name, values in columns.items()})


@dataclass(frozen=True, eq=False)
class CatalogData:
    """A real catalog, and optionally real events on it, in moodboard's ingestion layout.

    Attributes
    ----------
    name
        The dataset's public name, e.g. ``"fashion"``.
    products
        One row per product, all string columns: ``columns.CATALOG_COLUMNS`` first, then one
        column per attribute (these become ``Product.attributes`` on ingestion).
    events
        One row per event, all string columns: the canonical event columns
        (``columns.EVENT_COLUMNS``) then extras (stored in ``props`` on ingestion); None when the
        dataset has no events.
    """

    name: str
    products: pa.Table
    events: pa.Table | None = None

    @property
    def attribute_columns(self) -> list[str]:
        """The product columns that are not canonical catalog fields."""
        canonical = set(C.CATALOG_COLUMNS)
        return [n for n in self.products.column_names if n not in canonical]

    def iter_products(self) -> Iterator[Product]:
        """The products as ``Product`` records, attributes built from the extra columns.

        Null attribute values are left out of ``attributes``.

        Raises
        ------
        pydantic.ValidationError
            If a row is not a valid product (e.g. it has no title).
        """
        attrs = self.attribute_columns
        for row in self.products.to_pylist():
            yield Product.from_row(row, {a: row[a] for a in attrs if row[a] is not None})

    def __len__(self) -> int:
        return self.products.num_rows


@dataclass(frozen=True, eq=False)
class SeqRecData:
    """User sequences for sequential recommendation, with item ids as in the source file.

    Attributes
    ----------
    name
        ``"beauty"``, ``"sports"`` or ``"toys"``.
    user_ids
        ``int64`` user ids, one per sequence, in file order.
    sequences
        One ``int32`` array of item ids per user, in time order (oldest first).
    n_items
        The largest item id + 1. Ids are 1-based as in the file (0 is never an item), so an
        embedding table of ``n_items`` rows can use row 0 for padding, as published code does.
    item_attributes
        Item id -> attribute ids (from ``*_item2attributes.json``).
    """

    name: str
    user_ids: np.ndarray
    sequences: list[np.ndarray]
    n_items: int
    item_attributes: dict[int, list[int]]

    @property
    def n_users(self) -> int:
        """The number of users (sequences)."""
        return len(self.sequences)

    @property
    def n_interactions(self) -> int:
        """The total length of all sequences."""
        return int(sum(len(s) for s in self.sequences))
