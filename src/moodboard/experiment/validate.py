"""Checks of the statistics by resampling real users: A/A splits, a planted SRM, planted effects.

Given per-user values from the logs (``UserValues``: the metric ``y``, optionally the
denominator ``x`` of a ratio metric and a pre-period covariate ``pre``), each run splits the
users at random into two arms (a fair coin per user, numpy ``Generator``) and tests the
difference with ``welch`` (mean), ``ratio`` (delta method) and ``cuped``. In an A/A split the
null is true, so each test should reject in about ``alpha`` of the runs; with a planted effect
the intervals should cover it in about ``1 - alpha`` of them.

The runs are vectorised: a (runs x users) assignment matrix times a (users x sums) matrix gives
every run's treatment sums at once (the control's are the totals minus them), and the tests
take those arrays as a batch of ``Moments``. Runs go in blocks so memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from moodboard.errors import ConfigError, InputError
from moodboard.experiment._checks import check_count, check_open_unit, values_1d
from moodboard.experiment.power import mde
from moodboard.experiment.sequential import msprt_pvalue, tau2_for
from moodboard.experiment.stats import Moments, cuped, ratio, srm, welch

_log = logging.getLogger(__name__)

_CELLS = 4_000_000  # assignment matrix cells per block of runs (32 MB as float64)
# the columns of the per-user sums matrix
_N, _Y, _Y2, _X, _X2, _XY, _P, _P2, _YP = range(9)


@dataclass(frozen=True)
class UserValues:
    """Per-user values, in the order the users arrived (the daily cohorts follow it).

    Raises
    ------
    InputError
        If fewer than 4 users, a value is not finite, or ``x`` / ``pre`` are not aligned.
    """

    y: np.ndarray
    x: np.ndarray | None = None
    pre: np.ndarray | None = None

    def __post_init__(self) -> None:
        y = values_1d("y", self.y)
        if y.size < 4:
            raise InputError(f"The resampling checks need 4 or more users. Got {y.size}.")
        object.__setattr__(self, "y", y)
        for name in ("x", "pre"):
            v = getattr(self, name)
            if v is not None:
                v = values_1d(name, v)
                if v.shape != y.shape:
                    raise InputError(f"'{name}' must have one value per user, as 'y'.")
                object.__setattr__(self, name, v)

    def sums_matrix(self) -> np.ndarray:
        """The (users x 9) matrix whose column sums are the Moments: 1, y, y², x, x², xy,
        pre, pre², y·pre (zeros where ``x`` or ``pre`` is missing)."""
        y = self.y
        x = self.x if self.x is not None else np.zeros_like(y)
        p = self.pre if self.pre is not None else np.zeros_like(y)
        return np.column_stack([np.ones_like(y), y, y * y, x, x * x, x * y, p, p * p, y * p])


def aa_runs(
    values: UserValues, runs: int = 2000, seed: int = 0, alpha: float = 0.05, days: int = 7
) -> dict[str, float]:
    """The false-positive rate of each test over random A/A splits.

    Parameters
    ----------
    values
        The users' values.
    runs
        How many random splits.
    seed
        Seed of the splits.
    alpha
        The tests' level.
    days
        For the sequential test: the users arrive in ``days`` equal cohorts (in their order);
        after each day the always-valid test (mSPRT on the Welch estimate and standard error,
        ``tau2 = mde**2`` of the whole sample's planned size) looks at all data so far. A run
        counts as an error if any look rejects.

    Returns
    -------
    dict
        Rejection rates: "mean", "sequential", and "ratio" / "cuped" when ``x`` / ``pre``
        are given.

    Raises
    ------
    ConfigError
        If ``runs`` or ``days`` < 1, ``alpha`` not in (0, 1), or a day would have < 4 users.
    """
    check_count("runs", runs, "aa_runs")
    check_count("days", days, "aa_runs")
    check_open_unit("alpha", alpha, "aa_runs")
    n = values.y.size
    check_count("users per day", n // days, "aa_runs", minimum=4)
    z = values.sums_matrix()
    cuts = np.linspace(0, n, days + 1).round().astype(int)
    tau2 = tau2_for(mde(float(values.y.var(ddof=1)), n / 2, alpha=alpha))
    cum_all = np.cumsum(np.add.reduceat(z, cuts[:-1], axis=0), axis=0)[:, None, :]
    rejected: dict[str, list[np.ndarray]] = {k: [] for k in [*_metrics(values), "sequential"]}
    for a in _blocks(np.random.default_rng(seed), runs, n):
        daily = np.stack([a[:, lo:hi] @ z[lo:hi] for lo, hi in pairwise(cuts)])
        cum_t = np.cumsum(daily, axis=0)  # (days, runs, 9)
        for name, effect in _tests(cum_all[-1] - cum_t[-1], cum_t[-1], values, alpha).items():
            rejected[name].append(effect.p_value <= alpha)
        looks = welch(_moments(cum_all - cum_t, "y"), _moments(cum_t, "y"), alpha)
        p = msprt_pvalue(np.nan_to_num(looks.estimate), np.nan_to_num(looks.se, nan=1.0), tau2)
        rejected["sequential"].append(np.min(p, axis=0) <= alpha)
    rates = {k: float(np.concatenate(v).mean()) for k, v in rejected.items()}
    _log.info("A/A rejection rates over %d runs at alpha=%g: %s", runs, alpha, rates)
    return rates


def planted_srm(
    n: int = 10_000,
    logged: tuple[float, float] = (0.52, 0.48),
    seed: int = 0,
    threshold: float = 0.001,
) -> bool:
    """Whether ``srm`` flags a 50/50 design whose logs kept the arms in ``logged`` shares.

    ``n`` users are assigned by a fair coin (seeded); then a logging fault loses users of the
    arm with the smaller logged share until the logged counts are in the ``logged`` ratio.

    Raises
    ------
    ConfigError
        If ``n`` < 1, the shares are not in (0, 1) or do not sum to 1.
    """
    check_count("n", n, "planted_srm")
    check_open_unit("logged[0]", logged[0], "planted_srm")
    check_open_unit("logged[1]", logged[1], "planted_srm")
    if abs(sum(logged) - 1) > 1e-9:
        raise ConfigError(f"The 'logged' shares of planted_srm must sum to 1. Got {logged}.")
    assigned = np.random.default_rng(seed).binomial(n, 0.5, size=1)[0]
    arms = np.array([assigned, n - assigned], dtype=float)
    big = int(np.argmax(logged))  # that arm is complete, the other lost users
    counts = np.minimum(arms, np.round(arms[big] * np.asarray(logged) / logged[big]))
    result = srm(
        {"control": int(counts[0]), "treatment": int(counts[1])},
        {"control": 0.5, "treatment": 0.5},
        threshold,
    )
    return not result.passed


def ab_coverage(
    values: UserValues, runs: int = 1000, effect: float = 0.1, seed: int = 0, alpha: float = 0.05
) -> dict[str, float]:
    """How often the ``1 - alpha`` intervals cover a planted effect, and what CUPED gains.

    The effect is additive for the mean and CUPED tests: ``effect`` is added to every
    treatment user's ``y`` (so the true effect is ``effect``). For the ratio test it is
    multiplicative on the numerator: treatment users' ``y`` is scaled by
    ``1 + effect / mean(y)``, so the true effect on the population ratio ``R = sum y / sum x``
    is ``effect / mean(y) * R``.

    Returns
    -------
    dict
        Coverage per test ("mean", "ratio", "cuped" as available) and, with ``pre``,
        "variance_reduction" (mean over runs) and "width_ratio" (mean CUPED interval width
        over mean Welch width).

    Raises
    ------
    ConfigError
        If ``runs`` < 1 or ``alpha`` not in (0, 1).
    """
    check_count("runs", runs, "ab_coverage")
    check_open_unit("alpha", alpha, "ab_coverage")
    z = values.sums_matrix()
    total = z.sum(axis=0)
    lift = effect / values.y.mean()
    truth = {"mean": effect, "cuped": effect}
    if values.x is not None:
        truth["ratio"] = lift * total[_Y] / total[_X]
    covered: dict[str, list[np.ndarray]] = {k: [] for k in _metrics(values)}
    reduction: list[np.ndarray] = []
    widths: list[tuple[np.ndarray, np.ndarray]] = []
    for a in _blocks(np.random.default_rng(seed), runs, values.y.size):
        t = a @ z
        c = total - t
        additive, scaled = t.copy(), t.copy()
        additive[:, _Y2] += 2 * effect * t[:, _Y] + effect**2 * t[:, _N]
        additive[:, _Y] += effect * t[:, _N]
        additive[:, _YP] += effect * t[:, _P]
        f = 1 + lift
        scaled[:, [_Y, _XY, _Y2]] *= [f, f, f * f]
        for name, eff in _tests(c, additive, values, alpha, scaled).items():
            covered[name].append((eff.ci[0] <= truth[name]) & (truth[name] <= eff.ci[1]))
            if name == "cuped":
                reduction.append(eff.variance_reduction)  # type: ignore[arg-type]
                plain = welch(_moments(c, "y"), _moments(additive, "y"), alpha)
                widths.append((eff.ci[1] - eff.ci[0], plain.ci[1] - plain.ci[0]))
    out = {k: float(np.concatenate(v).mean()) for k, v in covered.items()}
    if reduction:
        out["variance_reduction"] = float(np.concatenate(reduction).mean())
        adjusted, plain_w = (np.concatenate(w) for w in zip(*widths, strict=True))
        out["width_ratio"] = float(adjusted.mean() / plain_w.mean())
    _log.info("A/B coverage over %d runs at alpha=%g: %s", runs, alpha, out)
    return out


def _metrics(values: UserValues) -> list[str]:
    return (
        ["mean"]
        + (["ratio"] if values.x is not None else [])
        + (["cuped"] if values.pre is not None else [])
    )


def _tests(
    c: np.ndarray,
    t: np.ndarray,
    values: UserValues,
    alpha: float,
    t_ratio: np.ndarray | None = None,
) -> dict[str, object]:
    """The batch of tests on control / treatment sums (runs x 9)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"mean": welch(_moments(c, "y"), _moments(t, "y"), alpha)}
        if values.x is not None:
            tr = t if t_ratio is None else t_ratio
            out["ratio"] = ratio(_moments(c, "x"), _moments(tr, "x"), alpha)
        if values.pre is not None:
            out["cuped"] = cuped(_moments(c, "pre"), _moments(t, "pre"), alpha)
    return out


def _moments(s: np.ndarray, second: str) -> Moments:
    """Batched Moments of y alone ("y"), with the denominator ("x") or the covariate ("pre")."""
    if second == "y":
        return Moments(s[..., _N], s[..., _Y], s[..., _Y2])
    a, a2, ay = (_X, _X2, _XY) if second == "x" else (_P, _P2, _YP)
    return Moments(s[..., _N], s[..., _Y], s[..., _Y2], s[..., a], s[..., a2], s[..., ay])


def _blocks(rng: np.random.Generator, runs: int, users: int) -> Iterator[np.ndarray]:
    """Blocks of the (runs x users) 0/1 treatment assignment, a fair coin per user."""
    size = max(1, _CELLS // users)
    for start in range(0, runs, size):
        yield (rng.random((min(size, runs - start), users)) < 0.5).astype(np.float64)
