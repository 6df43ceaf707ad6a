"""The simulated world: a real catalog's attributes and shoppers with known tastes.

Each shopper has a weight for some values of each taste attribute (a favourite gender, two to
four article types, two or three colours, a usage, a season, and a budget where the catalog has
prices). ``affinity(u, i)`` is the sum of the shopper's weights for item ``i``'s values; it
drives the click model. The tastes are the ground truth that evaluation can read back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.errors import InputError

#: Attributes shoppers have tastes over, when the catalog has them.
TASTE_ATTRIBUTES: tuple[str, ...] = ("gender", "articleType", "baseColour", "usage", "season")
#: How many favourite values a shopper has per attribute (low, high inclusive) and their weight.
_FAVOURITES: dict[str, tuple[int, int, float]] = {
    "gender": (1, 1, 2.0),
    "articleType": (2, 4, 1.6),
    "baseColour": (2, 3, 0.9),
    "usage": (1, 1, 0.5),
    "season": (1, 1, 0.3),
}
_DEFAULT_FAVOURITES = (1, 2, 1.0)


@dataclass(frozen=True)
class Shopper:
    """One simulated shopper's true tastes.

    Attributes
    ----------
    weights
        Per attribute, the weight of each value code (0 for values the shopper does not care
        about).
    favourites
        Per attribute, the favourite values, most liked first.
    budget
        The price above which items lose appeal, or None.
    """

    user_id: str
    weights: dict[str, np.ndarray]
    favourites: dict[str, tuple[str, ...]]
    budget: float | None = None


@dataclass
class World:
    """Item attribute codes of a catalog, for fast affinity computation.

    Attributes
    ----------
    item_ids
        External product ids, in index order.
    codes
        Per taste attribute, each item's value code (-1 when missing).
    vocab
        Per taste attribute, the values in code order.
    available
        Which items are in the catalog now (``simulate.catalog_growth`` withholds some and
        releases them over the days); None: all.
    """

    item_ids: np.ndarray
    codes: dict[str, np.ndarray]
    vocab: dict[str, list[str]]
    prices: np.ndarray | None = None
    titles: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    available: np.ndarray | None = None

    @classmethod
    def from_products(
        cls, products: pa.Table, attributes: Sequence[str] = TASTE_ATTRIBUTES
    ) -> World:
        """Build the world from a products table (as ``Workspace.products_table``).

        Attributes present in at least half of the products are used; a catalog with none of
        them uses the levels of its category path instead.

        Raises
        ------
        InputError
            If the catalog is empty.
        """
        n = products.num_rows
        if n == 0:
            raise InputError("The workspace has no products: ingest a catalog before simulating.")
        rows = [json.loads(a) if a else {} for a in products.column(C.ATTRIBUTES).to_pylist()]
        values: dict[str, list[str | None]] = {}
        for a in attributes:
            col = [r.get(a) or None for r in rows]
            if sum(v is not None for v in col) >= n / 2:
                values[a] = col
        if not values:
            paths = [(c or "").split("/") for c in products.column(C.CATEGORY).to_pylist()]
            depth = max(len(p) for p in paths)
            for lvl in range(depth):
                values[f"category_{lvl + 1}"] = [
                    p[lvl] if len(p) > lvl and p[lvl] else None for p in paths
                ]
        codes, vocab = {}, {}
        for a, col in values.items():
            vocab[a] = sorted({v for v in col if v is not None})
            index = {v: k for k, v in enumerate(vocab[a])}
            codes[a] = np.array([index.get(v, -1) if v else -1 for v in col], dtype=np.int32)
        prices = products.column(C.PRICE).to_numpy(zero_copy_only=False).astype(np.float64)
        has_price = np.isfinite(prices).mean() >= 0.5
        return cls(
            item_ids=np.asarray(products.column(C.ID).to_pylist(), dtype=object),
            codes=codes,
            vocab=vocab,
            prices=prices if has_price else None,
            titles=np.asarray(products.column(C.TITLE).to_pylist(), dtype=object),
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def in_catalog(self) -> np.ndarray:
        """Per item, whether it is in the catalog now (all True without catalog growth)."""
        if self.available is None:
            return np.ones(len(self), dtype=bool)
        return self.available

    def sample_shopper(self, user_id: str, rng: np.random.Generator) -> Shopper:
        """Draw one shopper's tastes: favourites are drawn by the catalog's value frequencies."""
        weights, favourites = {}, {}
        for a, codes in self.codes.items():
            lo, hi, w = _FAVOURITES.get(a, _DEFAULT_FAVOURITES)
            freq = np.bincount(codes[codes >= 0], minlength=len(self.vocab[a])).astype(float)
            k = min(int(rng.integers(lo, hi + 1)), int((freq > 0).sum()))
            fav = rng.choice(len(freq), size=k, replace=False, p=freq / freq.sum())
            wa = np.zeros(len(freq), dtype=np.float64)
            wa[fav] = w * np.linspace(1.0, 0.6, num=k) if k > 1 else w
            if a == "gender" and "Unisex" in self.vocab[a]:
                wa[self.vocab[a].index("Unisex")] = max(wa[self.vocab[a].index("Unisex")], w / 2)
            weights[a] = wa
            favourites[a] = tuple(self.vocab[a][c] for c in fav)
        budget = None
        if self.prices is not None:
            p = self.prices[np.isfinite(self.prices)]
            budget = float(np.quantile(p, rng.uniform(0.4, 0.95)))
        return Shopper(user_id, weights, favourites, budget)

    def affinity(self, shopper: Shopper, items: np.ndarray | None = None) -> np.ndarray:
        """The shopper's affinity for items (all items when ``items`` is None)."""
        idx = np.arange(len(self)) if items is None else np.asarray(items)
        score = np.zeros(len(idx), dtype=np.float64)
        for a, codes in self.codes.items():
            c = codes[idx]
            w = shopper.weights[a]
            score += np.where(c >= 0, w[np.maximum(c, 0)], 0.0)
        if shopper.budget is not None and self.prices is not None:
            over = np.nan_to_num(self.prices[idx] / shopper.budget - 1.0, nan=0.0)
            score -= 1.5 * np.clip(over, 0.0, 3.0)
        return score

    def matches(self, shopper: Shopper, attribute: str, items: np.ndarray) -> np.ndarray:
        """Whether each item has one of the shopper's favourite values of ``attribute``."""
        fav = [self.vocab[attribute].index(v) for v in shopper.favourites[attribute]]
        return np.isin(self.codes[attribute][items], fav)

    def value(self, attribute: str, item: int) -> str | None:
        """One item's value of an attribute."""
        c = self.codes[attribute][item]
        return self.vocab[attribute][c] if c >= 0 else None


def fit_activity_shape(counts: Sequence[int] | np.ndarray) -> float:
    """The Gamma shape k of shoppers' visit rates (``simulate.activity_shape``) from real counts.

    Parameters
    ----------
    counts
        One count per customer over the same window (visits, purchase days; zeros included).

    Returns
    -------
    float
        ``1 / alpha`` of the maximum-likelihood negative binomial (``statsmodels``
        ``NegativeBinomial``, NB2, intercept only): counts Poisson given a rate that is Gamma
        over customers with shape k. The smaller k, the more a few customers make most visits.
    """
    import statsmodels.api as sm

    y = np.asarray(counts, dtype=np.float64).ravel()
    if len(y) < 10 or (y < 0).any() or y.var() <= y.mean():
        raise InputError(
            "fit_activity_shape needs at least 10 counts >= 0, one per customer, more spread "
            f"than a Poisson's (variance > mean); got {len(y)} with mean {y.mean():.3g} and "
            f"variance {y.var():.3g}."
        )
    fit = sm.NegativeBinomial(y, np.ones((len(y), 1))).fit(disp=0)
    return float(1.0 / fit.params[-1])
