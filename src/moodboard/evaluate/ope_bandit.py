"""``moodboard evaluate ope --dataset open-bandit``: BTS's click rate estimated from the random
policy's logs of the Open Bandit Dataset (ZOZOTOWN), against BTS's own logs.

The task is obp's OBD example (behaviour policy: uniform random; evaluation policy: Bernoulli
Thompson Sampling from ZOZOTOWN's prior). BTS's action distribution is the Monte Carlo of
``moodboard.evaluate.ope_bts`` over ``n_sim`` pages (obp's
``BernoulliTS(is_zozotown_prior=True).compute_batch_action_dist``). The reward model is obp's
feature engineering (the user features one-hot without their first level; the item features
label-encoded beside ``item_feature_0``) under ``moodboard.evaluate.ope_reward``'s cross-fitted
classifier. The truth is BTS's on-policy rate: the mean click of its own logs on the campaign.

The small sample has 38-69 clicks per 10,000 rows, so every estimate is noisy; obp published
the mean relative error of 30 bootstrap runs for the same task on "all" (``OBP_PUBLISHED``), which
the table prints beside ours (one run on the full sample). The rows are single impressions,
not whole pages, so the slate estimators have no pages to run on here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from moodboard.datasets import load_open_bandit
from moodboard.evaluate.ope import (
    BanditFeedback,
    OPEConfig,
    estimates_table,
    estimator_round_rewards,
    evaluate_policy,
)
from moodboard.evaluate.ope_bts import bts_action_dist, zozotown_prior
from moodboard.evaluate.ope_reward import RewardModelConfig, estimate_rewards

_log = logging.getLogger(__name__)

#: obp's published mean relative errors on "all" (random -> BTS, logistic regression reward
#: model, 30 bootstrap resamples of the small sample, BTS from 1,000,000 simulated pages;
#: switch-dr and dr-os tuned by SLOPE): the README of obp's examples/obd (obp >= 0.5).
OBP_PUBLISHED = {
    "dm": 0.156876,
    "ipw": 0.311082,
    "snipw": 0.311795,
    "dr": 0.292464,
    "sndr": 0.302407,
    "switch-dr": 0.258410,
    "dr-os": 0.159520,
}


class OpenBanditOPEConfig(BaseModel):
    """The Open Bandit OPE task: the campaign, BTS's Monte Carlo, the estimators and the reward
    model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign: Literal["all", "men", "women"] = "all"
    n_sim: int = Field(default=100_000, ge=1, description="Simulated BTS pages.")
    bts_seed: int = Field(default=12345, ge=0, description="Seed of BTS's Monte Carlo.")
    ope: OPEConfig = OPEConfig()
    reward_model: RewardModelConfig = RewardModelConfig()


def obp_features(log: pd.DataFrame, item_context: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """obp 0.4.1's features of the OBD: the round context and the action context.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(n, d)`` the user features one-hot without each one's first level, and
        ``(n_actions, 4)`` the item features 1-3 label-encoded (sorted codes) beside
        ``item_feature_0``.
    """
    users = log[[c for c in log.columns if c.startswith("user_feature")]]
    context = pd.get_dummies(users.astype(str), drop_first=True, dtype=float).to_numpy()
    cats = [
        np.unique(item_context[c].astype(str), return_inverse=True)[1]
        for c in ("item_feature_1", "item_feature_2", "item_feature_3")
    ]
    action_context = np.column_stack([*cats, item_context["item_feature_0"].to_numpy(float)])
    return context, action_context


@dataclass(frozen=True, eq=False)
class OpenBanditLogs:
    """The random policy's rounds as arrays, BTS's action distribution and on-policy rate."""

    context: np.ndarray
    action_context: np.ndarray
    action: np.ndarray
    position: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    bts_dist: np.ndarray
    on_policy: float

    def feedback(self, config: RewardModelConfig, rows: np.ndarray | None = None) -> BanditFeedback:
        """The rounds ``rows`` (default all; repeats allowed) with BTS's action distribution and
        the reward model's estimates, fitted on those rounds."""
        take = np.arange(len(self.reward)) if rows is None else rows
        ctx, action, position = self.context[take], self.action[take], self.position[take]
        reward, slots = self.reward[take], self.bts_dist.shape[1]
        q = estimate_rewards(ctx, action, reward, self.action_context, position, slots, config)
        return BanditFeedback(
            reward=reward,
            action=action,
            pscore=self.pscore[take],
            action_dist=np.broadcast_to(self.bts_dist, (len(take), *self.bts_dist.shape)),
            position=position,
            estimated_rewards=q,
        )


def load_open_bandit_logs(
    config: OpenBanditOPEConfig, root: Path | str | None = None
) -> OpenBanditLogs:
    """The campaign's random-policy logs, obp's features, BTS's action distribution from
    ``config.n_sim`` simulated pages and BTS's on-policy click rate.

    Raises
    ------
    DatasetNotFoundError
        If the dataset is missing.
    """
    random = load_open_bandit("random", config.campaign, root)
    bts = load_open_bandit("bts", config.campaign, root)
    log = random.log
    alpha, beta = zozotown_prior(config.campaign)
    context, action_context = obp_features(log, random.item_context)
    return OpenBanditLogs(
        context=context,
        action_context=action_context,
        action=log["item_id"].to_numpy(int),
        position=log["position"].to_numpy(int) - 1,
        reward=log["click"].to_numpy(int),
        pscore=log["propensity_score"].to_numpy(float),
        bts_dist=bts_action_dist(alpha, beta, random.len_list, config.n_sim, config.bts_seed),
        on_policy=float(bts.log["click"].mean()),
    )


def relative_error_runs(
    logs: OpenBanditLogs, config: OpenBanditOPEConfig, runs: int
) -> dict[str, dict[str, float]]:
    """obp's protocol for its published figures: in run ``b`` the rounds are resampled with
    replacement (``RandomState(b).choice``, as ``OpenBanditDataset.sample_bootstrap_bandit_feedback
    (random_state=b)``), the reward model is fitted again, and each estimator's relative error
    is taken; the mean and the standard deviation (ddof 1) over the runs, per estimator."""
    n, errors = len(logs.reward), {}
    for b in range(runs):
        rows = np.random.RandomState(b).choice(np.arange(n), size=n, replace=True)
        rounds, _ = estimator_round_rewards(logs.feedback(config.reward_model, rows), config.ope)
        for name, x in rounds.items():
            errors.setdefault(name, []).append(abs(x.mean() - logs.on_policy) / logs.on_policy)
    return {
        name: {"mean": float(np.mean(e)), "std": float(np.std(e, ddof=1)) if runs > 1 else 0.0}
        for name, e in errors.items()
    }


@dataclass
class OpenBanditOPEReport:
    """Each estimator's estimate, interval and relative error against the on-policy rate."""

    campaign: str
    on_policy: float
    estimators: dict[str, dict[str, Any]]
    selected: str
    rows: int
    clicks: int
    obp_published: dict[str, float] | None = None
    runs: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object: ``on_policy``, ``estimators`` (name -> ``estimate``, ``ci``,
        ``relative_error``, and ``tau`` or ``lambda`` for the tuned ones, null meaning infinite:
        plain DR), ``selected``, ``campaign``, ``rows``, ``clicks``, ``obp_published`` (the
        published relative errors, "all" only), ``runs`` (``n`` and per estimator the
        ``relative_error`` ``mean`` and ``std`` of obp's protocol, or null) and ``params``."""
        return asdict(self)


def evaluate_open_bandit(
    config: OpenBanditOPEConfig | None = None, root: Path | str | None = None, runs: int = 0
) -> OpenBanditOPEReport:
    """Estimate BTS's click rate from the random logs with every estimator; compare each to BTS's
    on-policy rate; with ``runs`` > 0, also obp's protocol (``relative_error_runs``).

    Raises
    ------
    DatasetNotFoundError
        If the dataset is missing.
    """
    cfg = config or OpenBanditOPEConfig()
    logs = load_open_bandit_logs(cfg, root)
    data, truth = logs.feedback(cfg.reward_model), logs.on_policy
    result = evaluate_policy(data, cfg.ope)
    table = estimates_table(result, truth)
    _log.info(
        "open bandit ope %s: on-policy %.5f, selected %s", cfg.campaign, truth, result.selected
    )
    return OpenBanditOPEReport(
        campaign=cfg.campaign,
        on_policy=truth,
        estimators=table,
        selected=result.selected,
        rows=len(data.reward),
        clicks=int(data.reward.sum()),
        obp_published=dict(OBP_PUBLISHED) if cfg.campaign == "all" else None,
        runs={"n": runs, "relative_error": relative_error_runs(logs, cfg, runs)} if runs else None,
        params=json.loads(cfg.model_dump_json()),  # inf as "Infinity"
    )
