"""The composed page's parts: the deterministic order, the fresh items, and the explore
policy's propensities against its own Monte-Carlo frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from moodboard.blend import SlotRulesConfig, UtilityConfig
from moodboard.blend.compose import (
    ComposeConfig,
    ComposeDiversity,
    FreshConfig,
    FreshPolicy,
    fresh_items,
    order_page,
)
from moodboard.data import Candidates
from moodboard.errors import ConfigError

NO_RULES = SlotRulesConfig(rules=())


def _ranked(n: int = 40, seed: int = 0) -> tuple[Candidates, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = rng.permutation(200)[:n].astype(np.int32)
    scores = {f"p_{h}": rng.random(n) for h in ("click", "save", "purchase")}
    cand = Candidates(items, scores, np.full(n, "s", dtype=object))
    return cand, rng.normal(size=(200, 8))


def test_strength_zero_without_rules_is_the_utility_order() -> None:
    cand, emb = _ranked()
    weights = {"p_click": 1.0, "p_save": 2.0, "p_purchase": 8.0}
    cfg = ComposeConfig(
        utility=UtilityConfig(weights=weights),
        diversity=ComposeDiversity(strength=0.0),
        slot_rules=NO_RULES,
    )
    page = order_page(cand, cfg, emb, {})
    u = sum(w * cand.score(n).astype(np.float64) for n, w in weights.items())
    assert page.items.tolist() == cand.items[np.argsort(-u, kind="stable")].tolist()
    # no weights: the incoming order; diversity needs the embeddings
    keep = order_page(cand, cfg.model_copy(update={"utility": UtilityConfig(weights={})}), emb, {})
    assert keep.items.tolist() == cand.items.tolist()
    diverse = cfg.model_copy(update={"diversity": ComposeDiversity(strength=0.5)})
    with pytest.raises(ConfigError, match="item vectors"):
        order_page(cand, diverse, None, {})
    assert order_page(cand, diverse, emb, {}).items.tolist() != page.items.tolist()


def test_fresh_items_by_engagement_or_age_newest_first() -> None:
    engaged = np.array([0, 5, 1, 9, 0])
    cfg = FreshConfig(max_engagements=2, new_days=10)
    assert fresh_items(engaged, None, None, cfg).tolist() == [4, 2, 0]  # last rows first
    day = np.datetime64("2026-01-10", "us")
    created = np.array(["2025-01-01", "2026-01-05", "NaT", "2026-01-08", "2025-06-01"], "M8[us]")
    got = fresh_items(engaged, created, day, cfg).tolist()
    assert got == [3, 1, 4, 0, 2]  # 1 and 3 are new; NaT last


def _frequencies(policy: FreshPolicy, arms: np.ndarray, slots: int, runs: int) -> np.ndarray:
    counts = np.zeros((slots, len(arms)))
    for r in range(runs):
        order = policy(arms, slots, seed=3, user="mc", key=f"r{r}").order
        counts[np.arange(len(order)), order] += 1
    return counts


@pytest.mark.parametrize("kind", ["thompson", "linucb"])
def test_fresh_policy_propensities_are_its_draw_frequencies(kind: str) -> None:
    n_items = 30
    rng = np.random.default_rng(1)
    impressions = rng.integers(0, 40, n_items)
    clicks = rng.binomial(impressions, 0.1)
    features = rng.normal(size=(n_items, 4))
    cfg = FreshConfig(policy=kind, linucb={"epsilon": 0.3})
    policy = FreshPolicy(cfg).fit(impressions, clicks, features)
    arms = np.array([2, 5, 7, 11, 19, 23])
    choice = policy(arms, 3, seed=3, user="mc", key="r0")
    np.testing.assert_allclose(choice.marginals.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(choice.propensity, choice.marginals[np.arange(3), choice.order])
    assert choice.cascade[0] == pytest.approx(choice.propensity[0])
    again = policy(arms, 3, seed=3, user="mc", key="r0")
    assert again.order.tolist() == choice.order.tolist()
    runs = 3000
    counts = _frequencies(policy, arms, 3, runs)
    for s in range(3):
        expected = choice.marginals[s] * runs
        big = expected >= 5
        obs = np.append(counts[s][big], counts[s][~big].sum())
        exp = np.append(expected[big], expected[~big].sum())
        keep = exp > 0
        assert stats.chisquare(obs[keep], exp[keep]).pvalue > 1e-3, (kind, s)


def test_fresh_policy_none_and_linucb_without_features() -> None:
    none = FreshPolicy(FreshConfig(policy="none")).fit(np.zeros(3), np.zeros(3))
    assert len(none(np.arange(3), 2, seed=0, user=None, key="k").order) == 0
    with pytest.raises(ConfigError, match="feature row per item"):
        FreshPolicy(FreshConfig(policy="linucb")).fit(np.zeros(3), np.zeros(3))
