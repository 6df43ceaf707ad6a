"""Off-policy evaluation: a policy's value estimated from another policy's logged rounds.

Each logged round ``t`` holds the shown action ``a_t``, its slot ``k_t``, the reward ``r_t``
and the behaviour policy's propensity ``p_t``; the evaluation policy's action distribution
``pi(a | t, k)`` and a reward model's estimates ``q(t, a, k)`` are given for every action.
With ``w_t = pi(a_t | t, k_t) / p_t`` and ``d_t = sum_a pi(a | t, k_t) q(t, a, k_t)``, the
estimators average these round rewards (named as obp names them; obp 0.4.1 computes the same
numbers, which a test checks to 1e-9):

========== ==============================================================================
ipw        ``w r``
snipw      ``w r / mean(w)``
dm         ``d``
dr         ``d + w (r - q(a_t))``
sndr       ``d + w (r - q(a_t)) / mean(w)``
switch-dr  ``d + 1[w <= tau] w (r - q(a_t))``                       (Wang et al. 2017)
dr-os      ``d + lambda w / (w^2 + lambda) (r - q(a_t))``           (Su et al. 2020)
========== ==============================================================================

**Intervals** are obp's nonparametric bootstrap: ``n_bootstrap`` resamples of the rounds with
replacement (``numpy.random.RandomState(seed)``, the same draws obp makes with
``random_state=seed``), the ``alpha/2`` and ``1 - alpha/2`` percentiles of the resampled
means of the round rewards (the self-normalized ones keep the full sample's ``mean(w)``).

**SLOPE** (Su, Srinath and Krishnamurthy 2020, "Adaptive Estimator Selection for Off-Policy
Evaluation", in the SLOPE++ form of Tucker and Lee 2021 that obp >= 0.5 implements) picks one
candidate from a family whose bias grows as its variance shrinks. Each candidate gets the
width ``c = t_{n-1}(1 - delta) * sqrt(var(x) / (n - 1))`` of its round rewards ``x``; going
from the widest to the narrowest, a candidate is accepted while
``|theta_i - theta_j| <= c_i + (sqrt(6) - 1) c_j`` holds for every candidate ``j`` accepted
before it, and the last accepted one is chosen. It tunes switch-dr's ``tau`` and dr-os's
``lambda`` over their grids (a grid value of ``inf`` is plain DR), and then, run once more over
the estimators' round rewards, it is the **estimator selection**: ``OPEResult.selected``.
SLOPE's premise is that a candidate's width bounds its deviation from its own expectation;
the width of dm's round rewards ignores the reward model's own error (the model is held fixed),
so dm takes no part in the selection by default (``OPEConfig.select_among``). With it, SLOPE
lands on dm on each Open Bandit campaign, and dm's interval (obp's bootstrap, as narrow as the
spread of the model's estimates across rounds) misses BTS's on-policy rate on "all" and "men".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError
from moodboard.evaluate.ope_slope import slope_select, slope_width

_log = logging.getLogger(__name__)

#: The standard estimators, by obp's names.
ESTIMATORS = ("ipw", "snipw", "dm", "dr", "sndr", "switch-dr", "dr-os")
#: The hyperparameter name of the tuned estimators.
HYPERPARAM = {"switch-dr": "tau", "dr-os": "lambda"}
#: obp's example grid for switch-dr's tau and dr-os's lambda (``inf``: plain DR).
DEFAULT_GRID = (10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, math.inf)
_BOOTSTRAP_CELLS = 200_000  # resampled rounds drawn at once (small arrays: fast to reuse)


class OPEConfig(BaseModel):
    """Parameters of the standard estimators, their intervals and the selection."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    estimators: tuple[str, ...] = Field(default=ESTIMATORS, min_length=1)
    n_bootstrap: int = Field(default=10_000, ge=10, description="Resamples of each interval.")
    alpha: float = Field(default=0.05, gt=0, lt=1, description="1 - the intervals' level.")
    seed: int = Field(default=12345, ge=0, description="Seed of the bootstrap.")
    taus: tuple[float, ...] = Field(default=DEFAULT_GRID, min_length=1)
    lambdas: tuple[float, ...] = Field(default=DEFAULT_GRID, min_length=1)
    slope_delta: float = Field(default=0.05, gt=0, lt=1, description="SLOPE's t level.")
    select_among: tuple[str, ...] = Field(
        default=tuple(e for e in ESTIMATORS if e != "dm"),
        min_length=1,
        description="The estimators SLOPE selects among (those also in 'estimators').",
    )

    def model_post_init(self, _context: object) -> None:
        """Check the names and the grids.

        Raises
        ------
        ValueError
            On an unknown estimator name or a negative grid value (as pydantic's
            ValidationError).
        """
        for name, names in (("estimators", self.estimators), ("select_among", self.select_among)):
            unknown = [e for e in names if e not in ESTIMATORS]
            if unknown:
                raise ConfigError(
                    f"The '{name}' parameter of OPEConfig must name among {list(ESTIMATORS)}. "
                    f"Got {unknown} instead."
                )
        if not set(self.estimators) & set(self.select_among):
            raise ConfigError(
                "The 'select_among' parameter of OPEConfig must share an estimator with "
                f"'estimators' {list(self.estimators)}. Got {list(self.select_among)} instead."
            )
        for name, grid in (("taus", self.taus), ("lambdas", self.lambdas)):
            if any(not v >= 0 for v in grid):
                raise ConfigError(
                    f"The '{name}' parameter of OPEConfig must hold numbers >= 0. "
                    f"Got {list(grid)} instead."
                )


@dataclass(frozen=True, eq=False)
class BanditFeedback:
    """Logged rounds and the evaluation policy's view of them, as plain arrays.

    Attributes
    ----------
    reward
        ``(n,)`` observed rewards.
    action
        ``(n,)`` shown actions, integers in ``[0, n_actions)``.
    pscore
        ``(n,)`` the behaviour policy's probability of each shown action (> 0).
    action_dist
        ``(n, n_actions, len_list)`` the evaluation policy's action probabilities per slot.
    position
        ``(n,)`` 0-based slots, or None when ``len_list`` is 1.
    estimated_rewards
        ``(n, n_actions, len_list)`` a reward model's estimates, or None (then only ipw and
        snipw can run).

    Raises
    ------
    ConfigError
        If there are fewer than 2 rounds, the shapes disagree, a propensity is not positive or
        a position is out of range.
    """

    reward: np.ndarray
    action: np.ndarray
    pscore: np.ndarray
    action_dist: np.ndarray
    position: np.ndarray | None = None
    estimated_rewards: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.reward)
        if self.reward.ndim != 1 or n < 2:
            _bad("reward", "a 1-d array of at least 2 rounds", self.reward.shape)
        dist = self.action_dist
        if dist.ndim != 3 or dist.shape[0] != n:
            _bad("action_dist", f"an array of shape ({n}, n_actions, len_list)", dist.shape)
        for name in ("action", "pscore", "position"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != (n,):
                _bad(name, f"an array of shape ({n},)", arr.shape)
        if not (np.issubdtype(self.action.dtype, np.integer) and self.action.min() >= 0):
            _bad("action", "non-negative integers", self.action.dtype)
        if self.action.max() >= dist.shape[1]:
            _bad("action", f"< n_actions = {dist.shape[1]}", int(self.action.max()))
        if np.any(self.pscore <= 0):
            _bad("pscore", "positive", float(self.pscore.min()))
        pos = self.position
        if pos is None and dist.shape[2] > 1:
            _bad("position", "given when len_list > 1", None)
        if pos is not None and not (pos.min() >= 0 and pos.max() < dist.shape[2]):
            _bad("position", f"in [0, {dist.shape[2]})", (int(pos.min()), int(pos.max())))
        q = self.estimated_rewards
        if q is not None and q.shape != dist.shape:
            _bad("estimated_rewards", f"of the shape of action_dist {dist.shape}", q.shape)

    @property
    def slots(self) -> np.ndarray:
        """The 0-based slot of each round (zeros when no position is given)."""
        return np.zeros(len(self.reward), int) if self.position is None else self.position


def _bad(param: str, must: str, got: object) -> None:
    raise ConfigError(
        f"The '{param}' parameter of BanditFeedback must be {must}. Got {got} instead."
    )


@dataclass(frozen=True)
class Estimate:
    """One estimator's policy value, its bootstrap interval and its SLOPE width."""

    name: str
    value: float
    ci: tuple[float, float]
    width: float
    hyperparam: float | None = None


@dataclass(frozen=True)
class OPEResult:
    """Every configured estimator's estimate, and the one SLOPE selected among
    ``OPEConfig.select_among``."""

    estimates: dict[str, Estimate]
    selected: str


def importance_weights(data: BanditFeedback) -> np.ndarray:
    """``pi(a_t | t, k_t) / p_t`` per round."""
    rows = np.arange(len(data.reward))
    return data.action_dist[rows, data.action, data.slots] / data.pscore


def _model_parts(data: BanditFeedback) -> tuple[np.ndarray, np.ndarray]:
    """The direct-method term ``d`` and the reward model's estimate of the shown action."""
    q = data.estimated_rewards
    if q is None:
        raise ConfigError(
            "The model-based estimators (dm, dr, sndr, switch-dr, dr-os) need "
            "BanditFeedback.estimated_rewards. Got None instead."
        )
    rows, slots = np.arange(len(data.reward)), data.slots
    q_at, pi_at = q[rows, :, slots], data.action_dist[rows, :, slots]
    # np.average divides by the weights' sum, as obp does (1 for a distribution)
    direct = (q_at * pi_at).sum(axis=1) / pi_at.sum(axis=1)
    return direct, q[rows, data.action, slots]


def round_rewards(name: str, data: BanditFeedback, hyperparam: float | None = None) -> np.ndarray:
    """The per-round terms whose mean is the estimator ``name``'s policy value.

    Parameters
    ----------
    name
        One of ``ESTIMATORS``.
    data
        The logged rounds.
    hyperparam
        switch-dr's ``tau`` or dr-os's ``lambda`` (default ``inf``: plain DR); else unused.

    Raises
    ------
    ConfigError
        If ``name`` is unknown, or a model-based estimator gets no reward estimates.
    """
    if name not in ESTIMATORS:
        raise ConfigError(
            f"The 'name' parameter of round_rewards must be one of {list(ESTIMATORS)}. "
            f"Got {name!r} instead."
        )
    w = importance_weights(data)
    r = data.reward.astype(float)
    if name == "ipw":
        return r * w
    if name == "snipw":
        return r * w / w.mean()
    direct, q_shown = _model_parts(data)
    if name == "dm":
        return direct
    h = math.inf if hyperparam is None else float(hyperparam)
    if name == "dr":
        return direct + w * (r - q_shown)
    if name == "sndr":
        return direct + w * (r - q_shown) / w.mean()
    if name == "switch-dr":
        return direct + (w <= h) * w * (r - q_shown)
    # dr-os: lambda w / (w^2 + lambda), w itself at lambda = inf, nothing at lambda = 0
    if math.isinf(h):
        shrunk = w
    elif h == 0:
        shrunk = np.zeros_like(w)
    else:
        shrunk = h * w / (w**2 + h)
    return direct + shrunk * (r - q_shown)


def bootstrap_intervals(
    samples: np.ndarray, n_bootstrap: int = 10_000, alpha: float = 0.05, seed: int = 12345
) -> np.ndarray:
    """Percentile intervals of the mean of each column of ``samples``, by obp's bootstrap.

    Every column is resampled with the same draws, the ones
    ``obp.utils.estimate_confidence_interval_by_bootstrap(column, alpha, n_bootstrap, seed)``
    makes, so each column's interval is obp's.

    Parameters
    ----------
    samples
        ``(n,)`` or ``(n, k)`` per-round values.

    Returns
    -------
    np.ndarray
        ``(k, 2)`` lower and upper bounds (``(2,)`` for 1-d ``samples``).
    """
    x = np.asarray(samples, dtype=float)
    flat = x.ndim == 1
    x = x[:, None] if flat else x
    n, columns = len(x), np.ascontiguousarray(x.T)
    rng = np.random.RandomState(seed)
    means = np.empty((n_bootstrap, len(columns)))
    chunk = max(1, _BOOTSTRAP_CELLS // n)
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        idx = rng.randint(0, n, size=(b, n))  # = b calls of RandomState.choice(x, size=n)
        for j, column in enumerate(columns):
            means[start : start + b, j] = column[idx].mean(axis=1)
    bounds = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0).T
    return bounds[0] if flat else bounds


def tuned_round_rewards(
    name: str, data: BanditFeedback, grid: Sequence[float], delta: float = 0.05
) -> tuple[float, np.ndarray]:
    """switch-dr's or dr-os's hyperparameter chosen by SLOPE over ``grid``, and its round
    rewards."""
    candidates = [round_rewards(name, data, h) for h in grid]
    best = slope_select(candidates, delta)
    return float(grid[best]), candidates[best]


def estimator_round_rewards(
    data: BanditFeedback, config: OPEConfig | None = None
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each configured estimator's round rewards (switch-dr and dr-os tuned by SLOPE over their
    grids) and the tuned hyperparameters.

    Raises
    ------
    ConfigError
        If a model-based estimator is configured and ``data`` has no reward estimates.
    """
    cfg = config or OPEConfig()
    rounds: dict[str, np.ndarray] = {}
    hyper: dict[str, float] = {}
    grids = {"switch-dr": cfg.taus, "dr-os": cfg.lambdas}
    for name in cfg.estimators:
        if name in grids:
            hyper[name], rounds[name] = tuned_round_rewards(
                name, data, grids[name], cfg.slope_delta
            )
        else:
            rounds[name] = round_rewards(name, data)
    return rounds, hyper


def evaluate_policy(data: BanditFeedback, config: OPEConfig | None = None) -> OPEResult:
    """Every configured estimator with its interval, the tuned hyperparameters, and the
    estimator SLOPE selects among them.

    Raises
    ------
    ConfigError
        If a model-based estimator is configured and ``data`` has no reward estimates.
    """
    cfg = config or OPEConfig()
    rounds, hyper = estimator_round_rewards(data, cfg)
    names = list(rounds)
    matrix = np.column_stack([rounds[n] for n in names])
    bounds = bootstrap_intervals(matrix, cfg.n_bootstrap, cfg.alpha, cfg.seed)
    estimates = {
        n: Estimate(
            name=n,
            value=float(matrix[:, i].mean()),
            ci=(float(bounds[i, 0]), float(bounds[i, 1])),
            width=slope_width(matrix[:, i], cfg.slope_delta),
            hyperparam=hyper.get(n),
        )
        for i, n in enumerate(names)
    }
    among = [n for n in names if n in cfg.select_among]
    selected = among[slope_select([rounds[n] for n in among], cfg.slope_delta)]
    _log.info("ope: %s selected among %s", selected, among)
    return OPEResult(estimates, selected)


def estimates_table(result: OPEResult, truth: float | None = None) -> dict[str, dict[str, Any]]:
    """The ``--json`` view of the estimates: name -> ``estimate``, ``ci``, ``relative_error``
    (``|estimate - truth| / truth``; None without a ``truth`` or when it is 0), and ``tau`` or
    ``lambda`` for the tuned ones (None meaning infinite: plain DR)."""
    table: dict[str, dict[str, Any]] = {}
    for name, est in result.estimates.items():
        error = abs(est.value - truth) / truth if truth else None
        row: dict[str, Any] = {"estimate": est.value, "ci": list(est.ci), "relative_error": error}
        if name in HYPERPARAM:
            h = est.hyperparam
            row[HYPERPARAM[name]] = None if h is None or np.isinf(h) else h
        table[name] = row
    return table
