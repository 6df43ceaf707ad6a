"""The Bayesian view of an effect, as GrowthBook's gbstats gives it (``EffectBayesianABTest``).

The effect (by default the relative lift ``(m_t - m_c) / m_c``, or the absolute difference)
gets a Gaussian posterior: the frequentist estimate and its delta-method variance under a flat
prior (gbstats' default), or combined with a proper Gaussian prior. From it: the chance that
the treatment beats the control, the risk (expected loss) of shipping either arm, and the
equal-tailed credible interval. All closed form (no Monte Carlo).

Per arm, as gbstats: a ``"mean"`` metric has the sample variance (ddof=1), a ``"proportion"``
``p (1 - p)`` (ddof=0), a ``"ratio"`` (``sum y / sum x``) the delta-method variance of the ratio
per user. Deviations from gbstats: where gbstats returns its uninformative default (chance 0.5,
zero risk) for an empty arm, a zero control mean or a zero variance, these functions raise
``InputError``; regression adjustment (CUPED) and the "scaled" difference type are not here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats as sps

from moodboard.errors import ConfigError, InputError
from moodboard.experiment._checks import check_open_unit, check_positive
from moodboard.experiment.stats import Moments

_log = logging.getLogger(__name__)

Kind = Literal["mean", "proportion", "ratio"]
Difference = Literal["relative", "absolute"]


@dataclass(frozen=True)
class BayesResult:
    """The posterior of the effect (treatment vs control) and what a report shows of it.

    ``risk`` is (control, treatment): the expected loss, in the effect's units, of shipping
    the control and of shipping the treatment (for an ``inverse`` metric, lower is better and
    the risks are swapped, as gbstats does).
    """

    expected: float
    stddev: float
    ci: tuple[float, float]
    chance_to_win: float
    risk: tuple[float, float]
    difference: Difference


def chance_to_win(mean: float, stddev: float, inverse: bool = False) -> float:
    """P(effect > 0) under the posterior N(mean, stddev**2); P(effect < 0) if ``inverse``."""
    check_positive("stddev", stddev, "chance_to_win")
    p = float(sps.norm.sf(0.0, mean, stddev))
    return 1.0 - p if inverse else p


def expected_loss(mean: float, stddev: float) -> tuple[float, float]:
    """The risks (control, treatment) of a posterior N(mean, stddev**2) of the effect.

    Shipping the control loses ``E[max(effect, 0)] = m Phi(m/s) + s phi(m/s)``; shipping the
    treatment loses ``E[max(-effect, 0)] = s phi(m/s) - m Phi(-m/s)``.
    """
    check_positive("stddev", stddev, "expected_loss")
    z = mean / stddev
    dens = stddev * float(sps.norm.pdf(z))
    return mean * float(sps.norm.cdf(z)) + dens, dens - mean * float(sps.norm.cdf(-z))


def credible_interval(mean: float, stddev: float, alpha: float = 0.05) -> tuple[float, float]:
    """The equal-tailed ``1 - alpha`` interval of a posterior N(mean, stddev**2)."""
    check_positive("stddev", stddev, "credible_interval")
    check_open_unit("alpha", alpha, "credible_interval")
    lo, hi = sps.norm.ppf([alpha / 2, 1 - alpha / 2], mean, stddev)
    return float(lo), float(hi)


def effect_bayes(
    control: Moments,
    treatment: Moments,
    kind: Kind = "mean",
    difference: Difference = "relative",
    alpha: float = 0.05,
    inverse: bool = False,
    prior: tuple[float, float] | None = None,
) -> BayesResult:
    """The Bayesian result of one metric, as gbstats' ``EffectBayesianABTest``.

    Parameters
    ----------
    control, treatment
        The arms' moments (``x`` sums are the denominator of a ratio metric).
    kind
        ``"mean"``, ``"proportion"`` (y is 0/1) or ``"ratio"``.
    difference
        ``"relative"`` (lift over the control mean) or ``"absolute"``.
    alpha
        1 - the credible interval's level.
    inverse
        Whether lower is better for this metric.
    prior
        (mean, variance) of a proper Gaussian prior on the relative effect (rescaled by the
        control mean for an absolute difference, as gbstats' ``prior_type="relative"``);
        ``None``: the flat improper prior, gbstats' default.

    Raises
    ------
    ConfigError
        If ``kind`` or ``difference`` is unknown, ``alpha`` not in (0, 1) or the prior's
        variance not > 0.
    InputError
        If an arm is empty, the control mean is 0 for a relative difference, a variance is
        not > 0, or a ratio metric has no x sums.
    """
    if kind not in ("mean", "proportion", "ratio"):
        raise ConfigError(
            f"The 'kind' parameter of effect_bayes must be 'mean', 'proportion' or 'ratio'. "
            f"Got {kind!r} instead."
        )
    if difference not in ("relative", "absolute"):
        raise ConfigError(
            "The 'difference' parameter of effect_bayes must be 'relative' or 'absolute'. "
            f"Got {difference!r} instead."
        )
    check_open_unit("alpha", alpha, "effect_bayes")
    (m_a, v_a, n_a), (m_b, v_b, n_b) = (
        _arm(m, kind, arm) for m, arm in ((control, "control"), (treatment, "treatment"))
    )
    relative = difference == "relative"
    if relative and m_a == 0:
        raise InputError("A relative effect needs a control mean != 0.")
    if relative:
        data_mean = (m_b - m_a) / m_a
        data_var = v_b / (m_a**2 * n_b) + v_a * m_b**2 / (m_a**4 * n_a)
    else:
        data_mean = m_b - m_a
        data_var = v_b / n_b + v_a / n_a
    mean, var = data_mean, data_var
    if prior is not None:
        p_mean, p_var = float(prior[0]), check_positive("prior variance", prior[1], "effect_bayes")
        if not relative:
            p_mean, p_var = p_mean * abs(m_a), p_var * m_a**2
        precision = 1 / data_var + 1 / p_var
        mean, var = (data_mean / data_var + p_mean / p_var) / precision, 1 / precision
    sd = math.sqrt(var)
    risk_c, risk_t = expected_loss(mean, sd)
    return BayesResult(
        expected=mean,
        stddev=sd,
        ci=credible_interval(mean, sd, alpha),
        chance_to_win=chance_to_win(mean, sd, inverse),
        risk=(risk_t, risk_c) if inverse else (risk_c, risk_t),
        difference=difference,
    )


def _arm(m: Moments, kind: Kind, arm: str) -> tuple[float, float, float]:
    """(mean, per-user variance, n) of one arm, as gbstats' statistics compute them."""
    n = float(m.n)  # type: ignore[arg-type]
    if n < 2:
        raise InputError(f"effect_bayes needs 2 or more users in the {arm} arm. Got {n:g}.")
    if kind == "proportion":
        mean = float(m.mean)  # type: ignore[arg-type]
        var = mean * (1 - mean)
    elif kind == "mean":
        mean, var = float(m.mean), float(m.var)  # type: ignore[arg-type]
    else:
        if not m.has_x or m.sum_x == 0:
            raise InputError(f"A ratio metric needs x sums != 0 in the {arm} arm.")
        my, mx = float(m.mean), float(m.mean_x)  # type: ignore[arg-type]
        mean = my / mx
        var = float(m.var / mx**2 - 2 * m.cov * my / mx**3 + my**2 * m.var_x / mx**4)
    if not var > 0:
        raise InputError(f"The {arm} arm has zero variance: nothing to infer.")
    return mean, var, n
