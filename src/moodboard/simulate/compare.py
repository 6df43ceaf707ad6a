"""The paired comparison of two arms over the same shoppers.

With common random numbers each shopper is simulated under both arms, so the arms are compared
on each shopper's difference ``d_u = a_u - b_u``: the estimate is its mean and the 95%
interval the paired t interval ``mean +- t(n - 1) * sd / sqrt(n)``, computed from the
sufficient statistics ``n, sum d, sum d^2`` (the same as ``scipy.stats.ttest_rel``'s
``confidence_interval``). Two identical arms give every ``d_u = 0``: an estimate of exactly 0
and the interval ``[0, 0]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from moodboard.errors import ConfigError


@dataclass(frozen=True)
class PairedStats:
    """Sufficient statistics of per-user differences: their count, sum and sum of squares."""

    n: int
    total: float
    squares: float

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> PairedStats:
        """The statistics of ``a - b`` (one value per user in each, same users, same order).

        Raises
        ------
        ConfigError
            If the arrays differ in length.
        """
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise ConfigError(
                f"A paired comparison needs one value per user in each arm, same users. Got "
                f"shapes {a.shape} and {b.shape} instead."
            )
        d = a - b
        return cls(len(d), float(d.sum()), float(np.dot(d, d)))

    @property
    def mean(self) -> float:
        """The mean difference (0 without users)."""
        return self.total / self.n if self.n else 0.0

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """The paired t interval of the mean difference.

        Raises
        ------
        ConfigError
            If there are fewer than 2 users or ``level`` is not in (0, 1).
        """
        if self.n < 2 or not 0 < level < 1:
            raise ConfigError(
                f"A paired interval needs at least 2 users and a level in (0, 1). Got "
                f"{self.n} users and level {level} instead."
            )
        var = max(0.0, (self.squares - self.total**2 / self.n) / (self.n - 1))
        if var == 0.0:
            return self.mean, self.mean
        half = float(stats.t.ppf((1 + level) / 2, self.n - 1)) * math.sqrt(var / self.n)
        return self.mean - half, self.mean + half

    def as_dict(self, level: float = 0.95) -> dict[str, Any]:
        """``{"estimate": mean, "ci": [lo, hi]}``."""
        lo, hi = self.interval(level)
        return {"estimate": self.mean, "ci": [lo, hi]}
