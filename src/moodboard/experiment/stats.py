"""Sufficient statistics per arm and the tests an experiment report runs on them.

Every test takes one ``Moments`` per arm (n, sums, sums of squares and products: they add up
over days and shards), never raw rows (ARCHITECTURE.md, convention 10). Check the sample ratio
first (``srm``); then ``welch`` / ``ztest`` for a mean metric, ``ratio`` for a ratio of sums
(CTR = clicks / impressions, users are the unit), ``cuped`` for a mean metric with a pre-period
covariate; correct many metrics with ``holm`` or ``benjamini_hochberg``.

The fields of a ``Moments`` may also be numpy arrays of one shape, a batch of experiments (the
resampling checks of ``moodboard.experiment.validate``): every test then returns an ``Effect``
of arrays. The input checks that need one number (at least 2 users, a standard error > 0) are
made on scalar input only; in a batch such entries come out NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from moodboard.errors import ConfigError, InputError
from moodboard.experiment._checks import check_open_unit, pvalues_1d, values_1d

_log = logging.getLogger(__name__)

#: A number, or an array of numbers (one per experiment in a batch).
Stat = float | np.ndarray
Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Moments:
    """The sufficient statistics of one arm over its users.

    ``y`` is the per-user metric (the numerator of a ratio metric). ``x`` is optional: the
    per-user denominator of a ratio metric or the pre-period covariate of CUPED.
    """

    n: Stat
    sum_y: Stat
    sum_y2: Stat
    sum_x: Stat | None = None
    sum_x2: Stat | None = None
    sum_xy: Stat | None = None

    @classmethod
    def of(cls, y: Values, x: Values | None = None) -> Moments:
        """The moments of per-user values ``y`` (and ``x``, aligned with ``y``).

        Raises
        ------
        InputError
            If the values are not 1-d and finite or ``x`` is not aligned with ``y``.
        """
        yv = values_1d("y", y)
        if x is None:
            return cls(float(yv.size), float(yv.sum()), float(yv @ yv))
        xv = values_1d("x", x)
        if xv.shape != yv.shape:
            raise InputError(f"x must have one value per user: {xv.size} values for {yv.size}.")
        sums = (yv.size, yv.sum(), yv @ yv, xv.sum(), xv @ xv, xv @ yv)
        return cls(*(float(v) for v in sums))

    @property
    def has_x(self) -> bool:
        """Whether the covariate / denominator sums are there."""
        return self.sum_x is not None and self.sum_x2 is not None and self.sum_xy is not None

    def __add__(self, other: Moments) -> Moments:
        """The moments of both groups of users together (e.g. two days, two shards).

        Raises
        ------
        InputError
            If one has x sums and the other not.
        """
        if not isinstance(other, Moments):
            return NotImplemented
        if self.has_x != other.has_x:
            raise InputError("Cannot add Moments with x sums to Moments without them.")
        if not self.has_x:
            return Moments(self.n + other.n, self.sum_y + other.sum_y, self.sum_y2 + other.sum_y2)
        return Moments(
            self.n + other.n,
            self.sum_y + other.sum_y,
            self.sum_y2 + other.sum_y2,
            self.sum_x + other.sum_x,
            self.sum_x2 + other.sum_x2,  # type: ignore[operator]
            self.sum_xy + other.sum_xy,  # type: ignore[operator]
        )

    @property
    def mean(self) -> Stat:
        """The mean of y."""
        return self.sum_y / self.n

    @property
    def var(self) -> Stat:
        """The sample variance of y (ddof=1)."""
        return (self.sum_y2 - self.sum_y**2 / self.n) / (self.n - 1)

    @property
    def mean_x(self) -> Stat:
        """The mean of x."""
        return self._x()[0] / self.n

    @property
    def var_x(self) -> Stat:
        """The sample variance of x (ddof=1)."""
        sx, sx2, _ = self._x()
        return (sx2 - sx**2 / self.n) / (self.n - 1)

    @property
    def cov(self) -> Stat:
        """The sample covariance of y and x (ddof=1)."""
        sx, _, sxy = self._x()
        return (sxy - sx * self.sum_y / self.n) / (self.n - 1)

    def _x(self) -> tuple[Stat, Stat, Stat]:
        if not self.has_x:
            raise InputError("These Moments have no x: build them with Moments.of(y, x).")
        return self.sum_x, self.sum_x2, self.sum_xy  # type: ignore[return-value]


@dataclass(frozen=True)
class Effect:
    """The treatment effect on one metric: treatment minus control.

    ``lift`` is ``estimate / control_mean`` (the unadjusted control mean for CUPED) and
    ``lift_ci`` its normal interval with the delta-method variance of a ratio of two
    independent means, ``var_t / m_c**2 + m_t**2 var_c / m_c**4`` (the variances being those
    of the arm means); ``df`` is ``inf`` for a normal-approximation test.
    """

    estimate: Stat
    ci: tuple[Stat, Stat]
    p_value: Stat
    se: Stat
    statistic: Stat
    df: Stat
    control_mean: Stat
    treatment_mean: Stat
    lift: Stat
    lift_ci: tuple[Stat, Stat]
    variance_reduction: Stat | None = None


@dataclass(frozen=True)
class SrmResult:
    """The sample-ratio check: ``passed`` when ``p_value >= threshold``."""

    statistic: float
    p_value: float
    passed: bool
    threshold: float
    expected: dict[str, float]
    message: str


def srm(
    observed: Mapping[str, int], expected_weights: Mapping[str, float], threshold: float = 0.001
) -> SrmResult:
    """The chi-square goodness-of-fit test of the users per arm against the design's weights.

    Parameters
    ----------
    observed
        Users per arm.
    expected_weights
        The design's weight per arm (any positive scale: they are normalised).
    threshold
        Flag a mismatch when the p-value is below it (0.001, as common platforms use).

    Raises
    ------
    ConfigError
        If the arms differ, a weight is not > 0 or the threshold is not in (0, 1).
    InputError
        If a count is negative or not an integer.
    """
    check_open_unit("threshold", threshold, "srm")
    if set(observed) != set(expected_weights) or len(observed) < 2:
        raise ConfigError(
            "The arms of 'observed' and 'expected_weights' of srm must be the same 2 or more. "
            f"Got {sorted(observed)} and {sorted(expected_weights)} instead."
        )
    arms = sorted(observed)
    w = np.array([expected_weights[a] for a in arms], dtype=float)
    if not np.all(np.isfinite(w) & (w > 0)):
        raise ConfigError(f"The 'expected_weights' of srm must be > 0. Got {w.tolist()} instead.")
    obs = np.array([observed[a] for a in arms], dtype=float)
    if np.any(obs < 0) or np.any(obs != np.round(obs)):
        raise InputError(f"The user counts of srm must be integers >= 0. Got {obs.tolist()}.")
    total = obs.sum()
    expected = total * w / w.sum()
    if total == 0:
        return SrmResult(0.0, 1.0, True, threshold, dict.fromkeys(arms, 0.0), "No users yet.")
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    p = float(sps.chi2.sf(chi2, len(arms) - 1))
    passed = p >= threshold
    shares = ", ".join(
        f"{a} {o / total:.2%} (expected {e / total:.2%})"
        for a, o, e in zip(arms, obs, expected, strict=True)
    )
    message = (
        f"Sample ratio OK (p={p:.3g}): {shares}."
        if passed
        else f"Sample ratio mismatch (p={p:.3g} < {threshold}): {shares}. Do not trust the "
        "effects: find why users are missing from an arm (assignment, logging, redirects)."
    )
    if not passed:
        _log.warning(message)
    return SrmResult(
        chi2, p, passed, threshold, dict(zip(arms, expected.tolist(), strict=True)), message
    )


def welch(control: Moments, treatment: Moments, alpha: float = 0.05) -> Effect:
    """Welch's t-test on the difference in means (Welch-Satterthwaite degrees of freedom).

    Raises
    ------
    InputError
        If an arm has fewer than 2 users or both arms have zero variance.
    ConfigError
        If ``alpha`` is not in (0, 1).
    """
    check_open_unit("alpha", alpha, "welch")
    _need(control, treatment, "welch")
    vc, vt = control.var / control.n, treatment.var / treatment.n
    with np.errstate(divide="ignore", invalid="ignore"):  # no variance: _effect says so
        df = np.divide((vc + vt) ** 2, vc**2 / (control.n - 1) + vt**2 / (treatment.n - 1))
    return _effect(control.mean, treatment.mean, vc, vt, df, alpha, "welch")


def ztest(control: Moments, treatment: Moments, alpha: float = 0.05) -> Effect:
    """The two-sample z-test on the difference in means (unequal variances, normal quantiles).

    Raises
    ------
    InputError
        If an arm has fewer than 2 users or both arms have zero variance.
    ConfigError
        If ``alpha`` is not in (0, 1).
    """
    check_open_unit("alpha", alpha, "ztest")
    _need(control, treatment, "ztest")
    vc, vt = control.var / control.n, treatment.var / treatment.n
    return _effect(control.mean, treatment.mean, vc, vt, np.inf, alpha, "ztest")


def ratio(control: Moments, treatment: Moments, alpha: float = 0.05) -> Effect:
    """The difference of a ratio metric, ``sum y / sum x`` per arm, users being the unit.

    The variance of an arm's ratio ``R = mean_y / mean_x`` is the delta method's
    ``(var_y - 2 R cov_xy + R**2 var_x) / (n mean_x**2)``; the test is a z-test.

    Raises
    ------
    InputError
        If an arm has fewer than 2 users, no x sums, a zero denominator sum, or both arms
        have zero variance.
    ConfigError
        If ``alpha`` is not in (0, 1).
    """
    check_open_unit("alpha", alpha, "ratio")
    _need(control, treatment, "ratio", x=True)
    if np.ndim(control.n) == 0 and (control.sum_x == 0 or treatment.sum_x == 0):
        raise InputError("ratio needs a denominator sum != 0 in each arm.")
    rc, rt = control.sum_y / control.sum_x, treatment.sum_y / treatment.sum_x
    vc, vt = (
        (m.var - 2 * r * m.cov + r**2 * m.var_x) / (m.n * m.mean_x**2)
        for m, r in ((control, rc), (treatment, rt))
    )
    return _effect(rc, rt, vc, vt, np.inf, alpha, "ratio")


def cuped(control: Moments, treatment: Moments, alpha: float = 0.05) -> Effect:
    """The difference in means adjusted by a pre-period covariate x (CUPED).

    ``theta = S_xy / S_xx`` pooled over both arms from the within-arm sums of products, so the
    estimate is the treatment coefficient of the OLS regression ``y ~ 1 + treatment + x``. An
    arm's adjusted mean is ``mean_y - theta (mean_x - overall mean_x)`` and its per-user
    variance ``var_y - 2 theta cov_xy + theta**2 var_x``; the test is a z-test. The relative
    lift divides by the unadjusted control mean (as GrowthBook does); ``variance_reduction``
    is ``1 - se_adjusted**2 / se_unadjusted**2``.

    Raises
    ------
    InputError
        If an arm has fewer than 2 users, no x sums, x has no variance, or both arms have
        zero variance.
    ConfigError
        If ``alpha`` is not in (0, 1).
    """
    check_open_unit("alpha", alpha, "cuped")
    _need(control, treatment, "cuped", x=True)
    sxx = (control.n - 1) * control.var_x + (treatment.n - 1) * treatment.var_x
    sxy = (control.n - 1) * control.cov + (treatment.n - 1) * treatment.cov
    if np.ndim(sxx) == 0 and sxx <= 0:
        raise InputError("cuped needs a covariate x that varies within the arms.")
    theta = sxy / sxx
    x_bar = (control.sum_x + treatment.sum_x) / (control.n + treatment.n)  # type: ignore[operator]
    adj_c, adj_t = (m.mean - theta * (m.mean_x - x_bar) for m in (control, treatment))
    vc, vt = ((m.var - 2 * theta * m.cov + theta**2 * m.var_x) / m.n for m in (control, treatment))
    raw = control.var / control.n + treatment.var / treatment.n
    effect = _effect(adj_c, adj_t, vc, vt, np.inf, alpha, "cuped", (control.mean, treatment.mean))
    return Effect(**{**effect.__dict__, "variance_reduction": 1 - (vc + vt) / raw})


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input's order.

    Raises
    ------
    InputError
        If a p-value is not in [0, 1].
    """
    p = pvalues_1d(pvalues)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input's order.

    Raises
    ------
    InputError
        If a p-value is not in [0, 1].
    """
    p = pvalues_1d(pvalues)
    order = np.argsort(p, kind="stable")
    m = p.size
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adjusted
    return out


def _effect(
    m_c: Stat,
    m_t: Stat,
    v_c: Stat,
    v_t: Stat,
    df: Stat,
    alpha: float,
    owner: str,
    base: tuple[Stat, Stat] | None = None,
) -> Effect:
    """The effect from the arms' means and the variances of those means."""
    se = np.sqrt(v_c + v_t)
    if np.ndim(se) == 0 and not se > 0:
        raise InputError(f"{owner} cannot test: both arms have zero variance.")
    estimate = m_t - m_c
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = estimate / se
        dist = sps.norm if np.all(np.isinf(df)) else sps.t(df)
        p = 2 * dist.sf(np.abs(stat))
        half = dist.ppf(1 - alpha / 2) * se
        b_c, b_t = base if base is not None else (m_c, m_t)
        lift = estimate / b_c
        lift_se = np.sqrt(v_t / b_c**2 + b_t**2 * v_c / b_c**4)
        lift_half = sps.norm.ppf(1 - alpha / 2) * lift_se
    return Effect(
        estimate=_num(estimate),
        ci=(_num(estimate - half), _num(estimate + half)),
        p_value=_num(p),
        se=_num(se),
        statistic=_num(stat),
        df=_num(df),
        control_mean=_num(m_c),
        treatment_mean=_num(m_t),
        lift=_num(lift),
        lift_ci=(_num(lift - lift_half), _num(lift + lift_half)),
    )


def _num(v: Stat) -> Stat:
    """A float for scalar input, the array for a batch."""
    return float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=float)


def _need(control: Moments, treatment: Moments, owner: str, x: bool = False) -> None:
    for arm, m in (("control", control), ("treatment", treatment)):
        if x and not m.has_x:
            raise InputError(f"{owner} needs x sums in the {arm} arm: use Moments.of(y, x).")
        if np.ndim(m.n) == 0 and m.n < 2:
            raise InputError(f"{owner} needs 2 or more users in the {arm} arm. Got {m.n:g}.")
