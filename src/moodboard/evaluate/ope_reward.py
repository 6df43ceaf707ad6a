"""The reward model of the model-based estimators: ``q(t, a, k)`` for every round, action and
slot, cross-fitted as obp's ``RegressionModel.fit_predict`` does.

One classifier per slot learns the reward from the round's context next to the shown action's
features (``[context, action_context[a]]``); the rounds are split into ``folds`` shuffled folds
(``KFold(folds, shuffle=True, random_state=seed)``) and each fold's estimates, for every action,
come from the models fitted on the other folds, so no round's estimate saw its own reward.
With the same classifier and inputs the estimates are obp's (a test checks it).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError

_log = logging.getLogger(__name__)


class RewardModelConfig(BaseModel):
    """The classifier and the cross-fitting of the reward model.

    The logistic regression defaults (``C=100``, ``max_iter=10000``) are obp's examples';
    LightGBM is small and strongly regularized for a few dozen clicks.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["logistic", "lightgbm"] = "logistic"
    folds: int = Field(default=3, ge=1, description="Cross-fitting folds (1: fit and predict all).")
    C: float = Field(default=100.0, gt=0, description="Inverse regularization (logistic).")
    max_iter: int = Field(default=10_000, ge=1)
    seed: int = Field(default=12345, ge=0)

    def classifier(self) -> Any:
        """A fresh, seeded scikit-learn-compatible classifier."""
        if self.model == "logistic":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)
        import lightgbm as lgb

        return lgb.LGBMClassifier(
            n_estimators=100,
            learning_rate=0.05,
            num_leaves=4,
            min_child_samples=100,
            reg_lambda=10.0,
            random_state=self.seed,
            n_jobs=1,
            verbose=-1,
        )


def _design(context: np.ndarray, action: np.ndarray, action_context: np.ndarray) -> np.ndarray:
    return np.hstack([context, action_context[action]])


def _predict_all_actions(model: Any, context: np.ndarray, action_context: np.ndarray) -> np.ndarray:
    """``(n, n_actions)`` click probabilities of every action in each round (one action at a
    time in one reused buffer: a stacked design of every pair is slow to allocate)."""
    n, d = context.shape
    x = np.empty((n, d + action_context.shape[1]))
    x[:, :d] = context
    out = np.empty((n, len(action_context)))
    for a, features in enumerate(action_context):
        x[:, d:] = features
        out[:, a] = model.predict_proba(x)[:, 1]
    return out


def estimate_rewards(
    context: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    action_context: np.ndarray,
    position: np.ndarray | None = None,
    len_list: int = 1,
    config: RewardModelConfig | None = None,
) -> np.ndarray:
    """Cross-fitted reward estimates for every round, action and slot.

    Parameters
    ----------
    context
        ``(n, d)`` features of each round.
    action
        ``(n,)`` shown actions.
    reward
        ``(n,)`` binary rewards.
    action_context
        ``(n_actions, d_a)`` features of each action (``np.eye(n_actions)`` for ids only).
    position
        ``(n,)`` 0-based slots, or None for one slot.
    len_list
        Slots (one model each).
    config
        The classifier, folds and seed.

    Returns
    -------
    np.ndarray
        ``(n, n_actions, len_list)`` estimated rewards.

    Raises
    ------
    ConfigError
        If a fold has no training rounds of a slot. A fold whose rounds of a slot have one
        reward only (few clicks) estimates that reward for the slot, the classifier's limit.
    """
    from sklearn.base import clone
    from sklearn.model_selection import KFold

    cfg = config or RewardModelConfig()
    n, n_actions = len(context), len(action_context)
    slots = np.zeros(n, int) if position is None or len_list == 1 else position
    base = cfg.classifier()
    out = np.zeros((n, n_actions, len_list))
    if cfg.folds == 1:
        splits = [(np.arange(n), np.arange(n))]
    else:
        splits = list(KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(context))
    for train, test in splits:
        for slot in range(len_list):
            rows = train[slots[train] == slot]
            if len(rows) == 0:
                raise ConfigError(
                    f"The reward model needs training rounds of every slot in every fold. "
                    f"Got none of slot {slot} instead."
                )
            if len(np.unique(reward[rows])) < 2:  # a classifier needs two classes
                _log.warning("reward model: slot %d of a fold has one reward only", slot)
                out[test, :, slot] = reward[rows][0]
                continue
            model = clone(base).fit(
                _design(context[rows], action[rows], action_context), reward[rows]
            )
            out[test, :, slot] = _predict_all_actions(model, context[test], action_context)
    _log.info("reward model %s: %d folds x %d slots", cfg.model, len(splits), len_list)
    return out
