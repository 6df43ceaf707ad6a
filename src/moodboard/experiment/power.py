"""Power of a two-arm test of a difference in means: minimum detectable effect, sample size.

Arm sizes follow statsmodels' convention: ``n_per_arm`` is the control arm's size and the
treatment arm has ``n_per_arm * weights[1] / weights[0]`` users (equal weights: both arms have
``n_per_arm``). ``variance`` is the per-user variance of the metric, the same in both arms.
``test="z"`` is the normal test (statsmodels ``NormalIndPower``), ``test="t"`` the t-test with
``n_c + n_t - 2`` degrees of freedom (``TTestIndPower``); both two-sided, counting both tails.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

from scipy import optimize, special
from scipy import stats as sps

from moodboard.errors import ConfigError
from moodboard.experiment._checks import check_open_unit, check_positive

_log = logging.getLogger(__name__)

Test = Literal["z", "t"]


def power_of(
    variance: float,
    effect: float,
    n_per_arm: float,
    alpha: float = 0.05,
    weights: tuple[float, float] = (0.5, 0.5),
    test: Test = "z",
) -> float:
    """The probability that the two-sided test rejects when the true effect is ``effect``.

    Raises
    ------
    ConfigError
        If a parameter is out of its range (see ``mde``).
    """
    _check(variance, alpha, 0.5, weights, test, "power_of")
    check_positive("n_per_arm", n_per_arm, "power_of")
    return _power(variance, abs(effect), n_per_arm, alpha, weights[1] / weights[0], test)


def mde(
    variance: float,
    n_per_arm: float,
    alpha: float = 0.05,
    power: float = 0.8,
    weights: tuple[float, float] = (0.5, 0.5),
    test: Test = "z",
) -> float:
    """The minimum detectable effect (absolute, in the metric's units) of the planned arms.

    Parameters
    ----------
    variance
        Per-user variance of the metric.
    n_per_arm
        Users in the control arm (see the module's note on ``weights``).
    alpha, power
        The two-sided test's level and the power wanted.
    weights
        The design's (control, treatment) traffic weights.
    test
        ``"z"`` or ``"t"``.

    Raises
    ------
    ConfigError
        If ``variance`` or a weight is not > 0, ``alpha`` or ``power`` not in (0, 1),
        ``n_per_arm`` < 2 for the t-test or not > 0, or ``test`` unknown.
    """
    _check(variance, alpha, power, weights, test, "mde")
    check_positive("n_per_arm", n_per_arm, "mde")
    ratio = weights[1] / weights[0]
    if test == "t" and n_per_arm * (1 + ratio) <= 2:
        raise ConfigError(
            f"The 'n_per_arm' parameter of mde must leave the t-test degrees of freedom. "
            f"Got {n_per_arm} instead."
        )
    se = math.sqrt(variance * (1 / n_per_arm + 1 / (n_per_arm * ratio)))
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    hi = 4 * z * se
    while _power(variance, hi, n_per_arm, alpha, ratio, test) < power:
        hi *= 2
    return float(
        optimize.brentq(
            lambda e: _power(variance, e, n_per_arm, alpha, ratio, test) - power,
            0.0,
            hi,
            xtol=1e-14 * hi,
            rtol=1e-12,
        )
    )


def sample_size(
    variance: float,
    effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    weights: tuple[float, float] = (0.5, 0.5),
    test: Test = "z",
) -> int:
    """The fewest users of the control arm that detect ``effect`` with the power wanted.

    The treatment arm needs ``ceil(n * weights[1] / weights[0])``.

    Raises
    ------
    ConfigError
        If ``effect`` is 0 or a parameter is out of its range (see ``mde``).
    """
    _check(variance, alpha, power, weights, test, "sample_size")
    check_positive("|effect|", abs(effect), "sample_size")
    ratio = weights[1] / weights[0]
    n_min = 3.0 / (1 + ratio) if test == "t" else 1e-9  # t: at least 1 degree of freedom

    def gap(n: float) -> float:
        return _power(variance, abs(effect), n, alpha, ratio, test) - power

    if gap(n_min) >= 0:
        return max(1, math.ceil(n_min))
    hi = 4.0
    while gap(hi) < 0:
        hi *= 2
    n = math.ceil(optimize.brentq(gap, n_min, hi, rtol=1e-12) - 1e-9)
    return n if gap(n) >= 0 else n + 1


def _power(variance: float, effect: float, n_c: float, alpha: float, ratio: float, test: Test):
    n_t = n_c * ratio
    delta = effect / math.sqrt(variance * (1 / n_c + 1 / n_t))
    if test == "z":
        crit = sps.norm.ppf(1 - alpha / 2)
        return float(sps.norm.sf(crit - delta) + sps.norm.cdf(-crit - delta))
    df = n_c + n_t - 2
    crit = sps.t.ppf(1 - alpha / 2, df)
    upper = 1 - special.nctdtr(df, delta, crit)  # as statsmodels: scipy's nct.cdf gives NaN
    lower = special.nctdtr(df, delta, -crit)  # far in the tail
    return float(upper + (0.0 if math.isnan(lower) else lower))


def _check(
    variance: float,
    alpha: float,
    power: float,
    weights: tuple[float, float],
    test: str,
    owner: str,
) -> None:
    check_positive("variance", variance, owner)
    check_open_unit("alpha", alpha, owner)
    check_open_unit("power", power, owner)
    if len(weights) != 2 or not all(math.isfinite(w) and w > 0 for w in weights):
        raise ConfigError(
            f"The 'weights' parameter of {owner} must be two numbers > 0. Got {weights} instead."
        )
    if owner != "power_of" and power <= alpha:
        raise ConfigError(
            f"The 'power' parameter of {owner} must be > alpha ({alpha}). Got {power} instead."
        )
    if test not in ("z", "t"):
        raise ConfigError(f"The 'test' parameter of {owner} must be 'z' or 't'. Got {test!r}.")
