"""SLOPE: pick one of several estimates of the same value, from the widest to the narrowest.

Su, Srinath and Krishnamurthy 2020, "Adaptive Estimator Selection for Off-Policy Evaluation",
in the SLOPE++ form of Tucker and Lee 2021 that obp >= 0.5 implements; the procedure and its
use (tuning and estimator selection) are described in ``moodboard.evaluate.ope``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from moodboard.errors import ConfigError

_SLOPE_C = math.sqrt(6) - 1


def slope_width(x: np.ndarray, delta: float = 0.05) -> float:
    """SLOPE's confidence width of the mean of ``x``: ``t_{n-1}(1 - delta)`` standard errors."""
    from scipy import stats

    n = len(x)
    return float(np.sqrt(np.var(x) / (n - 1)) * stats.t(n - 1).ppf(1.0 - delta))


def slope_select(candidates: Sequence[np.ndarray], delta: float = 0.05) -> int:
    """The index of the candidate SLOPE selects among per-round value arrays.

    Candidates are visited from the widest to the narrowest; each is accepted while its mean
    lies within ``c_i + (sqrt(6) - 1) c_j`` of every accepted candidate's, and the last one
    accepted is returned (the module docstring has the reference).

    Raises
    ------
    ConfigError
        If there is no candidate.
    """
    if not candidates:
        raise ConfigError("The 'candidates' parameter of slope_select must not be empty.")
    theta = np.array([float(np.mean(c)) for c in candidates])
    width = np.array([slope_width(c, delta) for c in candidates])
    order = np.argsort(width, kind="stable")[::-1]
    accepted = [int(order[0])]
    for i in order[1:]:
        prev = np.array(accepted)
        if not np.all(np.abs(theta[prev] - theta[i]) <= width[i] + _SLOPE_C * width[prev]):
            break
        accepted.append(int(i))
    return accepted[-1]
