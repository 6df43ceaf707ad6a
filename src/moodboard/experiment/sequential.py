"""Always-valid inference: look at an experiment every day and stop any time.

The mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh (2017,
"Always valid inference: bringing sequential analysis to A/B testing") with a normal mixture
N(theta0, tau2) over the effect. For an effect estimate with standard error ``se``
(``V = se**2``) the mixture likelihood ratio against ``theta0`` is::

    Lambda = sqrt(V / (V + tau2)) * exp(tau2 (estimate - theta0)**2 / (2 V (V + tau2)))

Under the null it is a non-negative martingale (Gaussian estimates, known variance), so by
Ville's inequality ``P(sup Lambda >= 1/alpha) <= alpha``: the p-value ``min(1, 1/Lambda)``
and the interval ``{theta0 : Lambda < 1/alpha}`` hold at every look at once. The interval is::

    estimate +- se * sqrt((V + tau2) / tau2 * (2 log(1/alpha) + log((V + tau2) / V)))

The running p-value is the minimum over the looks so far and the running interval the
intersection of the intervals so far (``SequentialTest``).

Choosing tau2: the test has most power for effects of size about ``sqrt(tau2)`` near the
planned end; the default rule here (``tau2_for``) is ``tau2 = mde**2``, the square of the
minimum detectable effect of the planned sample (``moodboard.experiment.power.mde``), which
follows Johari et al.'s advice of matching the mixture to the effects one expects. Any fixed
``tau2`` > 0 keeps the error guarantee; only the power depends on it.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import InputError
from moodboard.experiment._checks import check_open_unit, check_positive
from moodboard.experiment.stats import Stat

_log = logging.getLogger(__name__)


def tau2_for(mde: float) -> float:
    """The default mixing variance: the square of the effect one plans to detect.

    Raises
    ------
    ConfigError
        If ``mde`` is not a finite number > 0.
    """
    return check_positive("mde", mde, "tau2_for") ** 2


def msprt_log_lr(estimate: Stat, se: Stat, tau2: float, theta0: float = 0.0) -> Stat:
    """The log of the mixture likelihood ratio Lambda of ``estimate`` against ``theta0``.

    Arrays broadcast (a batch of experiments or of looks).

    Raises
    ------
    ConfigError
        If ``tau2`` is not a finite number > 0.
    InputError
        If a standard error is not > 0.
    """
    check_positive("tau2", tau2, "msprt")
    v = np.asarray(se, dtype=float) ** 2
    if not np.all(v > 0):
        raise InputError("The standard errors of the mSPRT must be > 0.")
    d = np.asarray(estimate, dtype=float) - theta0
    out = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2 * v * (v + tau2))
    return float(out) if np.ndim(out) == 0 else out


def msprt_pvalue(estimate: Stat, se: Stat, tau2: float) -> Stat:
    """The mSPRT p-value of one look, ``min(1, 1 / Lambda)`` against a zero effect.

    The always-valid p-value of several looks is the running minimum (``SequentialTest``).

    Raises
    ------
    ConfigError
        If ``tau2`` is not a finite number > 0.
    InputError
        If a standard error is not > 0.
    """
    p = np.exp(np.minimum(0.0, -np.asarray(msprt_log_lr(estimate, se, tau2))))
    return float(p) if np.ndim(p) == 0 else p


def always_valid_ci(
    estimate: Stat, se: Stat, tau2: float, alpha: float = 0.05
) -> tuple[Stat, Stat]:
    """The interval of the effects theta0 the mSPRT does not reject at one look.

    Raises
    ------
    ConfigError
        If ``tau2`` is not a finite number > 0 or ``alpha`` is not in (0, 1).
    InputError
        If a standard error is not > 0.
    """
    check_positive("tau2", tau2, "always_valid_ci")
    check_open_unit("alpha", alpha, "always_valid_ci")
    v = np.asarray(se, dtype=float) ** 2
    if not np.all(v > 0):
        raise InputError("The standard errors of the mSPRT must be > 0.")
    half = np.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log((v + tau2) / v)))
    lo, hi = np.asarray(estimate) - half, np.asarray(estimate) + half
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


class SequentialConfig(BaseModel):
    """Parameters of a sequential test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tau2: float = Field(gt=0, allow_inf_nan=False, description="Mixing variance (tau2_for).")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="The error rate over all looks.")


class SequentialTest:
    """The always-valid test of one effect over looks (e.g. one a day).

    Parameters
    ----------
    config
        The mixing variance and alpha.
    """

    def __init__(self, config: SequentialConfig) -> None:
        self.config = config
        self.looks = 0
        self.p_value = 1.0
        self.ci = (-math.inf, math.inf)

    @property
    def rejected(self) -> bool:
        """Whether a look so far rejected the zero effect (stop: the effect is real)."""
        return self.p_value <= self.config.alpha

    def update(self, estimate: float, se: float) -> tuple[float, tuple[float, float]]:
        """Add one look with the effect's estimate and standard error on all data so far.

        Returns
        -------
        tuple
            The running p-value (minimum so far) and the running interval (intersection).

        Raises
        ------
        InputError
            If ``se`` is not > 0 or the estimate is not finite.
        """
        if not math.isfinite(estimate):
            raise InputError(f"The estimate of a look must be finite. Got {estimate}.")
        p = float(msprt_pvalue(estimate, se, self.config.tau2))
        lo, hi = always_valid_ci(estimate, se, self.config.tau2, self.config.alpha)
        self.looks += 1
        self.p_value = min(self.p_value, p)
        self.ci = (max(self.ci[0], float(lo)), min(self.ci[1], float(hi)))
        if self.ci[0] > self.ci[1]:  # the intervals stopped overlapping: a rare sampling event
            _log.warning(
                "The running always-valid intervals do not overlap at look %d.", self.looks
            )
        return self.p_value, self.ci
