"""Off-policy estimators: oracle tests against obp 0.4.1, hand-checkable cases, SLOPE."""

from __future__ import annotations

import math

import numpy as np
import obp.ope as obp_ope  # the oracle: obp==0.4.1 (the dev extra)
import pytest

from moodboard.errors import ConfigError
from moodboard.evaluate.ope import (
    ESTIMATORS,
    BanditFeedback,
    OPEConfig,
    bootstrap_intervals,
    evaluate_policy,
    round_rewards,
    tuned_round_rewards,
)
from moodboard.evaluate.ope_bts import bts_action_dist, zozotown_prior
from moodboard.evaluate.ope_reward import RewardModelConfig, estimate_rewards
from moodboard.evaluate.ope_slate import slate_estimate
from moodboard.evaluate.ope_slope import slope_select

N, ACTIONS, SLOTS = 3_000, 12, 3


@pytest.fixture(scope="module")
def logs() -> BanditFeedback:
    """Seeded logs: a softmax behaviour policy, a Dirichlet evaluation policy per round and
    slot, binary rewards, uniform reward estimates."""
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(N, ACTIONS, SLOTS))
    behaviour = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    position = rng.integers(0, SLOTS, N)
    cum = behaviour[np.arange(N), :, position].cumsum(axis=1)
    action = np.minimum((rng.random(N)[:, None] > cum).sum(axis=1), ACTIONS - 1)
    dist = rng.dirichlet(np.full(ACTIONS, 0.5), size=(N, SLOTS)).transpose(0, 2, 1)
    return BanditFeedback(
        reward=rng.binomial(1, 0.3, N),
        action=action,
        pscore=behaviour[np.arange(N), action, position],
        action_dist=dist,
        position=position,
        estimated_rewards=rng.uniform(0.05, 0.6, size=(N, ACTIONS, SLOTS)),
    )


def _obp(name: str, hyperparam: float | None) -> object:
    cls = {
        "ipw": obp_ope.InverseProbabilityWeighting,
        "snipw": obp_ope.SelfNormalizedInverseProbabilityWeighting,
        "dm": obp_ope.DirectMethod,
        "dr": obp_ope.DoublyRobust,
        "sndr": obp_ope.SelfNormalizedDoublyRobust,
    }
    if name == "switch-dr":
        return obp_ope.SwitchDoublyRobust(tau=hyperparam)
    if name == "dr-os":
        return obp_ope.DoublyRobustWithShrinkage(lambda_=hyperparam)
    return cls[name]()


CASES = [(n, None) for n in ESTIMATORS[:5]] + [
    *(("switch-dr", t) for t in (0.5, 1.0, 3.0, 1e9)),
    *(("dr-os", lam) for lam in (0.1, 1.0, 10.0, 1e9)),
]


@pytest.mark.parametrize(("name", "hyperparam"), CASES)
def test_estimates_and_intervals_equal_obp(logs: BanditFeedback, name: str, hyperparam) -> None:
    kwargs = dict(
        reward=logs.reward,
        action=logs.action,
        pscore=logs.pscore,
        action_dist=logs.action_dist,
        position=logs.position,
        estimated_rewards_by_reg_model=logs.estimated_rewards,
    )
    ref = _obp(name, hyperparam)
    ours = round_rewards(name, logs, hyperparam)
    assert ours.mean() == pytest.approx(ref.estimate_policy_value(**kwargs), abs=1e-9, rel=1e-9)
    got = ref.estimate_interval(**kwargs, n_bootstrap_samples=300, random_state=11)
    lo, hi = bootstrap_intervals(ours, n_bootstrap=300, alpha=0.05, seed=11)
    assert (lo, hi) == pytest.approx(
        (got["95.0% CI (lower)"], got["95.0% CI (upper)"]), abs=1e-9, rel=1e-9
    )


def test_hyperparameter_limits_are_dr_and_dm(logs: BanditFeedback) -> None:
    """switch-dr with tau = inf and dr-os with lambda = inf are DR; dr-os with lambda = 0 and
    switch-dr with tau below every weight are DM."""
    dr, dm = round_rewards("dr", logs), round_rewards("dm", logs)
    np.testing.assert_allclose(round_rewards("switch-dr", logs, math.inf), dr)
    np.testing.assert_allclose(round_rewards("dr-os", logs, math.inf), dr)
    np.testing.assert_allclose(round_rewards("dr-os", logs, 0.0), dm)
    np.testing.assert_allclose(round_rewards("switch-dr", logs, 1e-12), dm)
    # hand check of one round of dr: d + w (r - q(a))
    t, k, a = 0, logs.position[0], logs.action[0]
    pi, q = logs.action_dist[t, :, k], logs.estimated_rewards[t, :, k]
    w = pi[a] / logs.pscore[t]
    assert dr[t] == pytest.approx(pi @ q / pi.sum() + w * (logs.reward[t] - q[a]))


def _slates(rng: np.random.Generator, n_slates: int = 400, k: int = 3) -> dict[str, np.ndarray]:
    slate_id = np.repeat(np.arange(n_slates), k)
    position = np.tile(np.arange(k), n_slates)
    item_b, item_e = rng.uniform(0.05, 1, (2, n_slates * k))
    # cascade probabilities: non-increasing products down the page
    casc_b = np.cumprod(item_b.reshape(n_slates, k), axis=1).ravel()
    casc_e = np.cumprod(item_e.reshape(n_slates, k), axis=1).ravel()
    return {
        "slate_id": slate_id,
        "position": position,
        "reward": rng.binomial(1, 0.4, n_slates * k),
        "item_b": item_b,
        "item_e": item_e,
        "casc_b": casc_b,
        "casc_e": casc_e,
        "page_b": np.repeat(casc_b.reshape(n_slates, k)[:, -1], k),
        "page_e": np.repeat(casc_e.reshape(n_slates, k)[:, -1], k),
    }


@pytest.mark.parametrize(
    ("name", "cls", "kind"),
    [
        ("sips", "SlateStandardIPS", ("pscore", "page")),
        ("iips", "SlateIndependentIPS", ("pscore_item_position", "item")),
        ("rips", "SlateRewardInteractionIPS", ("pscore_cascade", "casc")),
    ],
)
def test_slate_estimates_and_intervals_equal_obp(name: str, cls: str, kind) -> None:
    s = _slates(np.random.default_rng(3))
    arg, key = kind
    ref = getattr(obp_ope, cls)(len_list=3)
    kwargs = {
        "slate_id": s["slate_id"],
        "reward": s["reward"],
        "position": s["position"],
        arg: s[f"{key}_b"],
        f"evaluation_policy_{arg}": s[f"{key}_e"],
    }
    cfg = OPEConfig(n_bootstrap=300, seed=5)
    ours = slate_estimate(
        name, s["slate_id"], s["reward"], s["position"], s[f"{key}_b"], s[f"{key}_e"], cfg
    )
    assert ours.value == pytest.approx(ref.estimate_policy_value(**kwargs), abs=1e-9, rel=1e-9)
    got = ref.estimate_interval(**kwargs, n_bootstrap_samples=300, random_state=5)
    assert ours.ci == pytest.approx(
        (got["95.0% CI (lower)"], got["95.0% CI (upper)"]), abs=1e-9, rel=1e-9
    )


def test_slate_logs_are_checked() -> None:
    s = _slates(np.random.default_rng(3), n_slates=4)
    with pytest.raises(ConfigError, match="non-increasing"):
        slate_estimate("rips", s["slate_id"], s["reward"], s["position"], s["item_b"], s["casc_e"])
    with pytest.raises(ConfigError, match="the same on every row"):
        slate_estimate("sips", s["slate_id"], s["reward"], s["position"], s["item_b"], s["page_e"])
    twice = s["position"].copy()
    twice[1] = 0
    with pytest.raises(ConfigError, match="unique within each slate"):
        slate_estimate("iips", s["slate_id"], s["reward"], twice, s["item_b"], s["item_e"])


def test_bts_action_distribution_is_obps_monte_carlo() -> None:
    """Same prior, same seed, same draws: obp's BernoulliTS batch distribution exactly."""
    from obp.policy import BernoulliTS
    from obp.policy.contextfree import production_prior_for_bts

    for campaign, prior in production_prior_for_bts.items():
        alpha, beta = zozotown_prior(campaign)
        np.testing.assert_array_equal(alpha, prior["alpha"])
        np.testing.assert_array_equal(beta, prior["beta"])
    alpha, beta = zozotown_prior("men")
    ref = BernoulliTS(
        n_actions=len(alpha), len_list=3, is_zozotown_prior=True, campaign="men", random_state=3
    ).compute_batch_action_dist(n_rounds=1, n_sim=30_000)[0]
    ours = bts_action_dist(alpha, beta, len_list=3, n_sim=30_000, seed=3)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_allclose(ours.sum(axis=0), 1.0)


def test_reward_model_is_obps_cross_fitted_regression_model() -> None:
    from obp.ope import RegressionModel
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    n, n_actions = 900, 5
    context = rng.normal(size=(n, 3))
    action_context = rng.normal(size=(n_actions, 2))
    action, position = rng.integers(0, n_actions, n), rng.integers(0, 2, n)
    logit = context[:, 0] + action_context[action, 1] - 0.5 * position
    reward = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    cfg = RewardModelConfig(C=100.0, max_iter=10_000, folds=3, seed=4)
    ours = estimate_rewards(context, action, reward, action_context, position, 2, cfg)
    ref = RegressionModel(
        base_model=LogisticRegression(C=100.0, max_iter=10_000, random_state=4),
        n_actions=n_actions,
        len_list=2,
        action_context=action_context,
    ).fit_predict(context, action, reward, position=position, n_folds=3, random_state=4)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)


def test_reward_model_estimates_the_only_reward_of_a_slot_without_clicks() -> None:
    rng = np.random.default_rng(2)
    n = 300
    context, action_context = rng.normal(size=(n, 2)), np.eye(3)
    action, position = rng.integers(0, 3, n), np.arange(n) % 2
    reward = np.where(position == 0, rng.binomial(1, 0.5, n), 0)
    q = estimate_rewards(context, action, reward, action_context, position, 2)
    assert np.all(q[:, :, 1] == 0) and 0.2 < q[:, :, 0].mean() < 0.8
    with pytest.raises(ConfigError, match="Got none of slot 1"):
        estimate_rewards(context, action, reward, action_context, np.zeros(n, int), 2)


def test_bootstrap_intervals_are_seeded_and_contain_each_estimate(logs: BanditFeedback) -> None:
    cfg = OPEConfig(n_bootstrap=400, seed=9)
    first, again = evaluate_policy(logs, cfg), evaluate_policy(logs, cfg)
    other = evaluate_policy(logs, cfg.model_copy(update={"seed": 10}))
    for name, est in first.estimates.items():
        assert est.ci == again.estimates[name].ci
        assert est.ci != other.estimates[name].ci
        assert est.ci[0] <= est.value <= est.ci[1], name
    assert first.selected == again.selected and first.selected in cfg.select_among


def test_slope_keeps_the_narrowest_candidate_consistent_with_the_wider_ones() -> None:
    """Widths fall and bias grows down the list: SLOPE stops before the biased narrow one."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(10_000)
    wide = 1.0 + 4.0 * noise  # unbiased, width ~0.066
    middle = 1.01 + 1.0 * noise  # small bias, width ~0.016
    narrow = 1.5 + 0.1 * noise  # biased far beyond the others' widths
    assert slope_select([wide, middle, narrow]) == 1
    assert slope_select([narrow, wide, middle]) == 2  # the order given does not matter
    assert slope_select([wide, middle]) == 1
    assert slope_select([wide]) == 0
    # tuning over a grid returns the grid value and its round rewards
    logs_rng = np.random.default_rng(2)
    n = 2_000
    dist = np.full((n, 4, 1), 0.25)
    fb = BanditFeedback(
        reward=logs_rng.binomial(1, 0.5, n),
        action=logs_rng.integers(0, 4, n),
        pscore=np.full(n, 0.25),
        action_dist=dist,
        estimated_rewards=np.full((n, 4, 1), 0.5),
    )
    tau, rewards = tuned_round_rewards("switch-dr", fb, [0.5, 2.0])
    # the weights are all 1: tau = 2 keeps DR (wider), tau = 0.5 is DM, which agrees with it
    assert tau == 0.5 and np.allclose(rewards, 0.5)


def test_invalid_inputs_say_what_to_fix(logs: BanditFeedback) -> None:
    with pytest.raises(ConfigError, match="'pscore' parameter of BanditFeedback must be positive"):
        BanditFeedback(logs.reward, logs.action, np.zeros(N), logs.action_dist, logs.position)
    with pytest.raises(ConfigError, match="'position' parameter"):
        BanditFeedback(logs.reward, logs.action, logs.pscore, logs.action_dist)
    with pytest.raises(ConfigError, match=r"need BanditFeedback\.estimated_rewards"):
        round_rewards("dr", BanditFeedback(**{**logs.__dict__, "estimated_rewards": None}))
    with pytest.raises(ValueError, match="'estimators' parameter of OPEConfig"):
        OPEConfig(estimators=("ips",))  # pydantic's ValidationError, a ValueError
    cfg = OPEConfig(taus=(1.0, math.inf))
    assert OPEConfig.model_validate_json(cfg.model_dump_json()) == cfg
