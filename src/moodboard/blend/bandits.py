"""Explore/exploit policies with exact propensities: Thompson sampling here, LinUCB in
``moodboard.blend.linucb``.

Both fill a slate of explore slots (the fresh-item slots of a page, or one slot: the choice of
a module) from a list of arms, seeded per request: ``request_rng(seed, user, request_id)``
with the policy's ``salt``, so replaying a request replays its page. Each returns a
``SlateChoice``: the arms picked in slot order and, for the off-policy estimators that read
the logs, three exact probabilities per slot:

* ``propensity``: the per-slot marginal ``P(slot s holds the arm it holds)``, over the policy's
  randomness and nothing else: what the independent-IPS slate estimator reads per slot (obp's
  ``pscore_item_position``);
* ``cascade``: ``P(slots 0..s hold exactly these arms in this order)``: what the cascade
  (reward-interaction) IPS estimator reads (obp's ``pscore_cascade``); its last value is the
  whole slate's probability, what standard slate IPS reads (obp's ``pscore``);
* ``marginals``: the ``(slots, n_arms)`` matrix of every arm's per-slot marginal (rows sum to
  1): what an estimator reads of this policy as the *target* (e.g. the pseudo-inverse
  estimator's target marginals). The pairwise slot marginals that the pseudo-inverse
  estimator needs of a non-uniform *logging* policy are not computed.

Thompson sampling (Beta-Bernoulli) ranks the arms by one draw ``theta_i ~ Beta`` each and
fills the slots in decreasing ``theta`` (picking without replacement); the marginals and the
cascade come from quadrature (``_slate_math``), exact up to its error, reported per choice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Self

import numpy as np
from pydantic import Field

from moodboard.blend._base import BlendConfig
from moodboard.blend._slate_math import BetaQuadrature
from moodboard.blend.explore import request_rng
from moodboard.errors import ConfigError, NotFittedError


@dataclass(frozen=True)
class SlateChoice:
    """The arms a policy put in its slots and their probabilities (module docstring).

    Attributes
    ----------
    order
        Positions in the given arms, in slot order (``min(slots, n_arms)`` of them).
    propensity
        Per slot: the marginal probability of the arm it holds.
    cascade
        Per slot: the probability of the slate up to and including it.
    marginals
        ``(len(order), n_arms)``: each arm's probability per slot; rows sum to 1.
    error
        The quadrature's indicator: the largest ``|row sum - 1|`` of the marginals before
        they were normalized (0 for closed forms).
    """

    order: np.ndarray
    propensity: np.ndarray
    cascade: np.ndarray
    marginals: np.ndarray
    error: float = 0.0


def rewards_of(arms: np.ndarray, rewards: np.ndarray, owner: str) -> np.ndarray:
    """The rewards as float64, checked: one per arm, each in [0, 1].

    Raises
    ------
    ConfigError
        If they do not fit the arms or leave [0, 1] (NaN included).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.shape != (len(arms),):
        raise ConfigError(
            f"The 'rewards' of {owner}.fit must have one value per arm ({len(arms)}). "
            f"Got shape {rewards.shape} instead."
        )
    if not np.all((rewards >= 0) & (rewards <= 1)):  # NaN fails too
        raise ConfigError(f"The 'rewards' of {owner}.fit must be in [0, 1]. Got other values.")
    return rewards


def policy_rng(
    seed: int, user: str | None, request_id: str | int, salt: str
) -> np.random.Generator:
    """A policy's random generator for one request: ``request_rng`` keyed by the request id
    and the policy's salt, so two policies of one request draw independently."""
    return request_rng(seed, user, f"{request_id}/{salt}")


class ThompsonConfig(BlendConfig):
    """Thompson sampling over Beta-Bernoulli arms.

    Attributes
    ----------
    prior_alpha, prior_beta
        The Beta prior of every arm (an arm never seen keeps it).
    max_arm_id
        The largest arm id ``fit`` accepts (the posteriors are arrays indexed by arm id).
    max_arms
        The slate is drawn among at most this many arms: those with the highest posterior
        mean plus two standard deviations (a deterministic cut, part of the policy).
    grid
        Quadrature: uniform cell edges over the region where the slots are decided (each
        posterior adds cells of its own width).
    salt
        Separates this policy's random stream from the request's other ones.
    """

    prior_alpha: float = Field(default=1.0, gt=0)
    prior_beta: float = Field(default=1.0, gt=0)
    max_arm_id: int = Field(default=50_000_000, ge=0)
    max_arms: int = Field(default=100, ge=1, le=2_000)
    grid: int = Field(default=24, ge=2, le=10_000)
    salt: str = "thompson"


class ThompsonSampling:
    """Beta-Bernoulli Thompson sampling over integer arm ids (item indices, module indices).

    Parameters
    ----------
    config
        Prior, arm cap and quadrature; ``ThompsonConfig()`` when None.
    """

    #: Quadratures kept, by posteriors and slots: a feed's requests mostly draw among the same
    #: fresh items (10 arm sets for 300 demo shoppers), whose marginals are then computed once.
    KEPT = 32

    def __init__(self, config: ThompsonConfig | None = None) -> None:
        self.config = config or ThompsonConfig()
        self._kept: OrderedDict[bytes, tuple[BetaQuadrature, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop the kept quadratures (the next request computes its marginals anew)."""
        with self._lock:
            self._kept.clear()

    def _marginals(
        self, a: np.ndarray, b: np.ndarray, slots: int
    ) -> tuple[BetaQuadrature, np.ndarray]:
        """The quadrature of posteriors ``(a, b)`` and its raw ``rank_marginals(slots)``, kept
        for the last ``KEPT`` posterior sets (the same numbers as computing them anew)."""
        key = np.concatenate([a, b, [slots, self.config.grid]]).tobytes()
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found
        quad = BetaQuadrature(a, b, slots, self.config.grid)
        found = (quad, quad.rank_marginals(slots))
        with self._lock:
            self._kept[key] = found
            while len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
        return found

    def fit(self, arms: np.ndarray, rewards: np.ndarray, trials: np.ndarray | None = None) -> Self:
        """Learn the posteriors from scratch: one Bernoulli reward (or a share in [0, 1]) per
        shown arm; with ``trials``, each row stands for that many showings with that share
        of successes (an item's impressions and its click-through rate).

        Raises
        ------
        ConfigError
            If an arm id is negative, or the rewards or trials do not fit the arms.
        """
        self.successes_ = np.zeros(0)
        self.failures_ = np.zeros(0)
        return self.partial_fit(arms, rewards, trials)

    def partial_fit(
        self, arms: np.ndarray, rewards: np.ndarray, trials: np.ndarray | None = None
    ) -> Self:
        """Add rewards to the posteriors (``fit`` from the prior when not fitted yet).

        Raises
        ------
        ConfigError
            If an arm id is negative, or the rewards or trials do not fit the arms.
        """
        if not hasattr(self, "successes_"):
            return self.fit(arms, rewards, trials)
        arms = self._arms(arms)
        r = rewards_of(arms, rewards, "ThompsonSampling")
        n = np.ones(len(arms)) if trials is None else np.asarray(trials, dtype=np.float64)
        if n.shape != r.shape or not np.all(n >= 0):  # NaN fails too
            raise ConfigError(
                "The 'trials' of ThompsonSampling.fit must be one count >= 0 per arm. "
                f"Got shape {n.shape} instead."
            )
        if len(arms) and arms.max() > self.config.max_arm_id:
            raise ConfigError(
                f"The arm ids of ThompsonSampling.fit must be <= max_arm_id "
                f"({self.config.max_arm_id}). Got {arms.max()} instead."
            )
        size = int(arms.max()) + 1 if len(arms) else 0
        if size > len(self.successes_):
            grow = size - len(self.successes_)
            self.successes_ = np.concatenate([self.successes_, np.zeros(grow)])
            self.failures_ = np.concatenate([self.failures_, np.zeros(grow)])
        np.add.at(self.successes_, arms, r * n)
        np.add.at(self.failures_, arms, (1.0 - r) * n)
        return self

    def posterior(self, arms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Beta parameters ``(a, b)`` of each arm (the prior for arms never seen).

        Raises
        ------
        NotFittedError
            Before ``fit`` or ``partial_fit``.
        """
        self._check_fitted()
        arms = self._arms(arms)
        if not len(self.successes_):  # fitted on no rewards: every arm has the prior
            zeros = np.zeros(len(arms))
            return self.config.prior_alpha + zeros, self.config.prior_beta + zeros
        known = arms < len(self.successes_)
        s = np.where(known, self.successes_[np.where(known, arms, 0)], 0.0)
        f = np.where(known, self.failures_[np.where(known, arms, 0)], 0.0)
        return self.config.prior_alpha + s, self.config.prior_beta + f

    def counts(self, arms: np.ndarray) -> np.ndarray:
        """How many rewards each arm has had (0: a fresh arm)."""
        a, b = self.posterior(arms)
        return a + b - self.config.prior_alpha - self.config.prior_beta

    def choose(self, arms: np.ndarray, slots: int, rng: np.random.Generator) -> np.ndarray:
        """The sampling step alone: positions in ``arms`` of the slate, in slot order."""
        a, b = self.posterior(arms)
        keep = self._eligible(a, b)
        theta = rng.beta(a[keep], b[keep])
        return keep[np.argsort(-theta, kind="stable")[: min(slots, len(keep))]]

    def propensities(self, arms: np.ndarray, order: np.ndarray) -> SlateChoice:
        """The probabilities of the slate ``order`` (positions in ``arms``) under the policy.

        Raises
        ------
        NotFittedError
            Before ``fit`` or ``partial_fit``.
        ConfigError
            If ``order`` holds an arm the ``max_arms`` cut leaves out (it is never drawn).
        """
        a, b = self.posterior(arms)
        order = np.asarray(order, dtype=np.int64)
        keep = self._eligible(a, b)
        slots = len(order)
        full = np.zeros((slots, len(a)))
        if slots == 0:
            return SlateChoice(order, np.zeros(0), np.zeros(0), full)
        if len(keep) == 1:
            full[0, keep[0]] = 1.0
            return SlateChoice(order, np.ones(1), np.ones(1), full)
        quad, raw = self._marginals(a[keep], b[keep], slots)
        sums = raw.sum(1, keepdims=True)
        full[:, keep] = raw / sums
        local = np.searchsorted(keep, order)  # keep is sorted
        if not np.array_equal(keep[local.clip(0, len(keep) - 1)], order):
            raise ConfigError(
                "The 'order' of ThompsonSampling.propensities holds arms outside the "
                f"{self.config.max_arms} the policy draws among (max_arms)."
            )
        casc = quad.cascade(local)
        casc[0] = full[0, order[0]]
        return SlateChoice(
            order,
            full[np.arange(slots), order],
            casc,
            full,
            float(np.abs(sums - 1.0).max()),
        )

    def __call__(
        self, arms: np.ndarray, slots: int, *, seed: int, user: str | None, request_id: str | int
    ) -> SlateChoice:
        """Fill ``slots`` explore slots from ``arms`` for one request.

        Parameters
        ----------
        arms
            Candidate arm ids (e.g. the fresh items' indices).
        slots
            How many slots (the slate has ``min(slots, len(arms))``).
        seed, user, request_id
            The request: the same three give the same slate.

        Raises
        ------
        NotFittedError
            Before ``fit`` or ``partial_fit``.
        """
        rng = policy_rng(seed, user, request_id, self.config.salt)
        return self.propensities(arms, self.choose(arms, slots, rng))

    def _eligible(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Sorted positions of the arms the draw is among (the ``max_arms`` cap)."""
        if len(a) <= self.config.max_arms:
            return np.arange(len(a))
        mean = a / (a + b)
        upper = mean + 2 * np.sqrt(mean * (1 - mean) / (a + b + 1))
        return np.sort(np.argsort(-upper, kind="stable")[: self.config.max_arms])

    def _arms(self, arms: np.ndarray) -> np.ndarray:
        arms = np.asarray(arms)
        if arms.ndim != 1 or (len(arms) and not np.issubdtype(arms.dtype, np.integer)):
            raise ConfigError(
                f"The arms of ThompsonSampling must be 1-d integer ids. Got {arms.dtype}."
            )
        arms = arms.astype(np.int64)
        if len(arms) and arms.min() < 0:
            raise ConfigError(f"The arm ids of ThompsonSampling must be >= 0. Got {arms.min()}.")
        return arms

    def _check_fitted(self) -> None:
        if not hasattr(self, "successes_"):
            raise NotFittedError("ThompsonSampling isn't fitted, call fit first")
