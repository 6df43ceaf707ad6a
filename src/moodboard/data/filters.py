"""Hard filters on items, applied inside retrieval (never after truncation)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data.catalog import Catalog


class ItemFilter(BaseModel):
    """Which items a request may return.

    Parameters
    ----------
    price_min, price_max
        Inclusive price bounds; items without a price fail a price bound.
    attributes
        Per attribute (``category`` for the category path's levels), the accepted values
        (case-insensitive); an item passes when its value is one of them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    price_min: float | None = Field(default=None, ge=0)
    price_max: float | None = Field(default=None, ge=0)
    attributes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when the filter lets every item through."""
        return self.price_min is None and self.price_max is None and not self.attributes

    def mask(self, catalog: Catalog) -> np.ndarray:
        """A boolean array over the catalog: True for items that pass."""
        ok = np.ones(len(catalog), dtype=bool)
        with np.errstate(invalid="ignore"):
            if self.price_min is not None:
                ok &= catalog.price >= self.price_min
            if self.price_max is not None:
                ok &= catalog.price <= self.price_max
        for name, values in self.attributes.items():
            wanted = {v.lower() for v in values}
            levels, inverse = catalog.value_levels(name)
            hit = np.fromiter((not w.isdisjoint(wanted) for w in levels), bool, len(levels))
            ok &= hit[inverse]
        return ok
