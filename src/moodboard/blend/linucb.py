"""LinUCB (one ridge model over arm features), epsilon-greedy at the slate level.

LinUCB is deterministic given its state, so it explores at the slate level: with probability
``1 - epsilon`` the top ``slots`` arms by upper confidence bound (exact ties go to the earlier
arm), else a uniformly random ordered slate. Every probability of the ``SlateChoice`` is then
closed-form: the per-slot marginal ``(1 - epsilon) [greedy] + epsilon / n``, the cascade
``(1 - epsilon) [prefix is greedy] + epsilon (n - s)! / n!``.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field

from moodboard.blend._base import BlendConfig
from moodboard.blend.bandits import SlateChoice, policy_rng, rewards_of
from moodboard.errors import ConfigError, NotFittedError


class LinUCBConfig(BlendConfig):
    """LinUCB with one ridge model over arm features, epsilon-greedy at the slate level.

    Attributes
    ----------
    alpha
        Width of the upper confidence bound.
    ridge
        The ridge penalty (the prior precision).
    epsilon
        Probability of a uniformly random slate (0: deterministic, every propensity 1).
    salt
        Separates this policy's random stream from the request's other ones.
    """

    alpha: float = Field(default=1.0, ge=0)
    ridge: float = Field(default=1.0, gt=0)
    epsilon: float = Field(default=0.05, ge=0, le=1)
    salt: str = "linucb"


class LinUCB:
    """LinUCB (Li et al. 2010) over feature rows of the arms.

    One linear model scores every arm from its features, so a fresh item gets a bound from
    its content; for module choice use the request's context crossed with a one-hot of the
    module (``np.kron(onehot, context)``: the disjoint per-arm models of the paper).

    Parameters
    ----------
    config
        Width, ridge and epsilon; ``LinUCBConfig()`` when None.
    """

    def __init__(self, config: LinUCBConfig | None = None) -> None:
        self.config = config or LinUCBConfig()

    def fit(self, features: np.ndarray, rewards: np.ndarray) -> Self:
        """Learn from scratch: one reward per shown arm's feature row.

        Raises
        ------
        ConfigError
            If ``features`` is not 2-d or the rewards do not fit it.
        """
        x = self._features(features, None)
        self.gram_ = self.config.ridge * np.eye(x.shape[1])
        self.moment_ = np.zeros(x.shape[1])
        return self.partial_fit(x, rewards)

    def partial_fit(self, features: np.ndarray, rewards: np.ndarray) -> Self:
        """Add observations (``fit`` when not fitted yet).

        Raises
        ------
        ConfigError
            If the features' width differs from the fitted one or the rewards do not fit.
        """
        if not hasattr(self, "gram_"):
            return self.fit(features, rewards)
        x = self._features(features, len(self.moment_))
        r = rewards_of(x, rewards, "LinUCB")
        self.gram_ = self.gram_ + x.T @ x
        self.moment_ = self.moment_ + x.T @ r
        self.inverse_ = np.linalg.inv(self.gram_)
        self.coef_ = self.inverse_ @ self.moment_
        return self

    def upper_bounds(self, features: np.ndarray) -> np.ndarray:
        """``x theta + alpha sqrt(x A^-1 x)`` per arm row.

        Raises
        ------
        NotFittedError
            Before ``fit`` or ``partial_fit``.
        """
        if not hasattr(self, "gram_"):
            raise NotFittedError("LinUCB isn't fitted, call fit first")
        x = self._features(features, len(self.moment_))
        width = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, self.inverse_, x), 0.0))
        return x @ self.coef_ + self.config.alpha * width

    def choose(self, features: np.ndarray, slots: int, rng: np.random.Generator) -> np.ndarray:
        """The sampling step alone: positions of the slate's arms, in slot order."""
        ucb = self.upper_bounds(features)
        k = min(slots, len(ucb))
        if rng.random() < self.config.epsilon:
            return rng.permutation(len(ucb))[:k]
        return np.argsort(-ucb, kind="stable")[:k]

    def propensities(self, features: np.ndarray, order: np.ndarray) -> SlateChoice:
        """The exact probabilities of the slate ``order`` under the policy."""
        ucb = self.upper_bounds(features)
        order = np.asarray(order, dtype=np.int64)
        n, k, eps = len(ucb), len(order), self.config.epsilon
        greedy = np.argsort(-ucb, kind="stable")[:k]
        full = np.full((k, n), eps / n) if n else np.zeros((k, 0))
        full[np.arange(k), greedy] += 1.0 - eps
        same = np.cumprod(greedy == order).astype(bool)
        uniform = np.cumprod([1.0 / (n - t) for t in range(k)])
        casc = (1.0 - eps) * same + eps * uniform
        return SlateChoice(order, full[np.arange(k), order], casc, full)

    def __call__(
        self,
        features: np.ndarray,
        slots: int,
        *,
        seed: int,
        user: str | None,
        request_id: str | int,
    ) -> SlateChoice:
        """Fill ``slots`` explore slots from the arms whose feature rows are ``features``.

        Raises
        ------
        NotFittedError
            Before ``fit`` or ``partial_fit``.
        """
        rng = policy_rng(seed, user, request_id, self.config.salt)
        return self.propensities(features, self.choose(features, slots, rng))

    @staticmethod
    def _features(features: np.ndarray, width: int | None) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or (width is not None and x.shape[1] != width):
            want = "2-d" if width is None else f"(n, {width})"
            raise ConfigError(f"The features of LinUCB must be {want}. Got shape {x.shape}.")
        return x
