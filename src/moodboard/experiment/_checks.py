"""The parameter checks the experiment statistics share (messages as in ARCHITECTURE.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from moodboard.errors import ConfigError, InputError


def check_open_unit(name: str, value: float, owner: str) -> float:
    """``value`` if it is a number in (0, 1).

    Raises
    ------
    ConfigError
        If it is not.
    """
    if not isinstance(value, Real) or not 0.0 < float(value) < 1.0:
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be in (0, 1). Got {value!r} instead."
        )
    return float(value)


def check_positive(name: str, value: float, owner: str) -> float:
    """``value`` if it is a finite number > 0.

    Raises
    ------
    ConfigError
        If it is not.
    """
    if not isinstance(value, Real) or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be a finite number > 0. Got {value!r} instead."
        )
    return float(value)


def check_count(name: str, value: int, owner: str, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum``.

    Raises
    ------
    ConfigError
        If it is not.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ConfigError(
            f"The '{name}' parameter of {owner} must be an int >= {minimum}. Got {value!r} instead."
        )
    return int(value)


def values_1d(name: str, v: Sequence[float] | np.ndarray) -> np.ndarray:
    """``v`` as a 1-d float array.

    Raises
    ------
    InputError
        If it is not 1-d and finite.
    """
    a = np.asarray(v, dtype=float)
    if a.ndim != 1 or not np.all(np.isfinite(a)):
        raise InputError(f"The per-user values '{name}' must be 1-d and finite.")
    return a


def pvalues_1d(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """``pvalues`` as a 1-d float array.

    Raises
    ------
    InputError
        If a p-value is not in [0, 1].
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    if not np.all((p >= 0) & (p <= 1)):
        raise InputError("The p-values must be in [0, 1].")
    return p
