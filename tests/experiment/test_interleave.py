"""Team-draft interleaving by hand: the merged page, the credit, the verdict against scipy, the
sample sizes and the per-request generators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from moodboard.errors import ConfigError
from moodboard.experiment.interleave import (
    ab_users_needed,
    credit,
    interleaving_users_needed,
    page_outcome,
    preference,
    request_rng,
    stable_hash,
    t_interval,
    team_draft,
    user_preferences,
)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_identical_rankings_give_that_ranking_and_alternate_teams_per_round() -> None:
    x = np.array([7, 3, 9, 1, 4, 8])
    for seed in range(20):
        page = team_draft(x, x, 6, _rng(seed))
        np.testing.assert_array_equal(page.items, x)
        # each round of two picks holds one item of each team
        assert all(set(page.teams[i : i + 2]) == {0, 1} for i in range(0, 6, 2))


def test_the_page_is_the_coin_flips_applied_by_hand() -> None:
    a, b = np.array([1, 2, 3, 4]), np.array([3, 5, 1, 6])
    coins = _rng(11).integers(2, size=3)  # the generator's draws: one per round
    page = team_draft(a, b, 5, _rng(11))
    # replay: each round the team of the coin picks first, each its best item not yet shown
    shown: list[int] = []
    teams: list[int] = []
    for c in coins:
        for team in (int(c), 1 - int(c)):
            if len(shown) == 5:
                break
            best = next(i for i in (a, b)[team] if i not in shown)
            shown.append(int(best))
            teams.append(team)
    np.testing.assert_array_equal(page.items, shown)
    np.testing.assert_array_equal(page.teams, teams)


def test_disjoint_rankings_interleave_fairly_each_team_in_its_own_order() -> None:
    a, b = np.arange(0, 10), np.arange(100, 110)
    for seed in range(50):
        page = team_draft(a, b, 10, _rng(seed))
        assert len(page.items) == 10 and len(set(page.items.tolist())) == 10
        # disjoint: every item's team is the ranking it comes from, five each, each in order
        np.testing.assert_array_equal(page.teams, (page.items >= 100).astype(np.int8))
        np.testing.assert_array_equal(page.items[page.teams == 0], a[:5])
        np.testing.assert_array_equal(page.items[page.teams == 1], b[:5])
        # after each round the teams are even
        assert all((page.teams[: 2 * r] == 0).sum() == r for r in range(1, 6))


def test_each_teams_items_keep_that_teams_order_when_the_rankings_overlap() -> None:
    rng = _rng(5)
    for seed in range(200):
        a = rng.permutation(30)[: rng.integers(1, 20)]
        b = rng.permutation(30)[: rng.integers(1, 20)]
        page = team_draft(a, b, int(rng.integers(1, 25)), _rng(seed))
        assert len(set(page.items.tolist())) == len(page.items)
        for team, ranking in ((0, a), (1, b)):
            mine = page.items[page.teams == team]
            rank = {int(x): r for r, x in enumerate(ranking)}
            assert all(int(x) in rank for x in mine)
            assert np.all(np.diff([rank[int(x)] for x in mine]) > 0)
        # the page holds every item it can, up to k: the union when that is shorter
        union = len(set(a.tolist()) | set(b.tolist()))
        assert len(page.items) == min(union, len(page.items)) <= union


def test_each_team_picks_first_half_of_the_time() -> None:
    a, b = np.arange(5), np.arange(5, 10)
    first = np.array([team_draft(a, b, 4, _rng(seed)).teams[0] for seed in range(4000)])
    # 4000 fair coins: a share of B first within 0.5 +- 0.03 (about 3.8 standard errors)
    assert abs(first.mean() - 0.5) < 0.03


def test_a_used_up_ranking_lets_the_other_fill_the_page() -> None:
    page = team_draft(np.array([1]), np.array([2, 3, 4, 5]), 4, _rng(0))
    assert sorted(page.items.tolist()) == [1, 2, 3, 4]
    assert page.teams.tolist().count(0) == 1
    np.testing.assert_array_equal(page.items[page.teams == 1], [2, 3, 4])
    # both used up before k: the union, once each
    page = team_draft(np.array([1, 2]), np.array([2, 1]), 10, _rng(3))
    assert sorted(page.items.tolist()) == [1, 2]
    empty = team_draft(np.array([], dtype=np.int64), np.array([], dtype=np.int64), 3, _rng(0))
    assert len(empty.items) == 0 and len(empty.teams) == 0


def test_team_draft_checks_its_parameters() -> None:
    x = np.arange(3)
    with pytest.raises(ConfigError, match=r"The 'k' parameter of team_draft must be an int >= 1"):
        team_draft(x, x, 0, _rng(0))
    with pytest.raises(ConfigError, match="each item once"):
        team_draft(np.array([1, 1]), x, 2, _rng(0))
    with pytest.raises(ConfigError, match="1-d array of item indices"):
        team_draft(x, np.array([[1, 2]]), 2, _rng(0))


def test_credit_counts_each_teams_clicks() -> None:
    teams = np.array([0, 1, 1, 0, 1, 0])
    clicked = np.array([True, True, False, False, True, True])
    assert credit(teams, clicked) == (2, 2)
    assert credit(teams, np.zeros(6, dtype=bool)) == (0, 0)
    assert credit(teams, np.array([0, 1, 1, 0, 1, 0], dtype=bool)) == (0, 3)
    with pytest.raises(ConfigError, match="same length"):
        credit(teams, clicked[:3])
    with pytest.raises(ConfigError, match="teams 0 or 1"):
        credit(np.array([0, 2]), np.array([True, True]))


def test_a_page_goes_to_the_team_with_more_clicks_ties_and_no_clicks_to_neither() -> None:
    assert page_outcome(3, 1) == (1, 0) and page_outcome(0, 2) == (0, 1)
    assert page_outcome(2, 2) == (0, 0) and page_outcome(0, 0) == (0, 0)
    # per page, a heavy clicker's page weighs one: 1 page won by A (5 clicks), 2 by B (1 each)
    pages = [page_outcome(5, 0), page_outcome(0, 1), page_outcome(0, 1), page_outcome(0, 0)]
    won_a, won_b = (sum(p[t] for p in pages) for t in (0, 1))
    assert (won_a, won_b) == (1, 2)
    v = preference(np.array([won_a, 0]), np.array([won_b, 0]))
    assert (v.wins_a, v.wins_b, v.ties, v.users) == (0, 1, 1, 2)
    assert v.delta == pytest.approx((-1 / 3 + 0) / 2)  # the user without a won page counts 0


def test_the_verdict_is_scipys_sign_test_and_t_interval() -> None:
    a = np.array([3, 0, 2, 1, 0, 4, 1, 0, 2, 5, 0, 1])
    b = np.array([1, 0, 2, 0, 1, 1, 0, 0, 0, 2, 0, 3])
    v = preference(a, b)
    assert (v.wins_a, v.wins_b, v.ties, v.users) == (6, 2, 4, 12)
    assert v.p_value == pytest.approx(stats.binomtest(6, 8, 0.5).pvalue)
    assert v.winner is None  # p = 0.29
    pref = user_preferences(a, b)
    assert pref[0] == pytest.approx(0.5) and pref[1] == 0.0 and pref[11] == pytest.approx(-0.5)
    assert v.delta == pytest.approx(pref.mean())
    ci = stats.ttest_1samp(pref, 0.0).confidence_interval(0.95)
    assert v.ci == pytest.approx((ci.low, ci.high))
    # 30 users preferring A, 5 preferring B, 5 ties: A wins
    many = preference(np.r_[np.ones(30), np.zeros(5), np.ones(5)], np.r_[np.zeros(30), np.ones(10)])
    assert many.winner == "A" and many.p_value == pytest.approx(stats.binomtest(30, 35).pvalue)
    assert preference(np.zeros(40), np.ones(40)).winner == "B"
    none = preference(np.zeros(3), np.zeros(3))
    assert none.p_value == 1.0 and none.winner is None and none.ci == (0.0, 0.0)
    assert math.isnan(t_interval(np.array([1.0]))[0])
    with pytest.raises(ConfigError, match="same length"):
        preference(np.zeros(3), np.zeros(2))
    with pytest.raises(ConfigError, match="'alpha' and 'level'"):
        preference(np.zeros(3), np.zeros(3), alpha=1.5)


def test_sample_sizes_by_their_formulas() -> None:
    z2 = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2
    pref = np.array([1.0, 0.0, -1.0, 1.0, 0.5, 0.0])
    expected = z2 * pref.var(ddof=1) / pref.mean() ** 2
    assert interleaving_users_needed(pref) == pytest.approx(expected)
    a, b = np.array([2.0, 3.0, 1.0, 4.0]), np.array([1.0, 1.0, 2.0, 0.0])
    per_arm = 2 * z2 * (a.var(ddof=1) + b.var(ddof=1)) / 2 / (a.mean() - b.mean()) ** 2
    assert ab_users_needed(a, b) == pytest.approx(2 * per_arm)
    # about 7.85 * 2 * sigma^2 / delta^2 per arm: 16 sigma^2 / delta^2, the textbook rule
    assert 2 * z2 == pytest.approx(15.70, abs=0.01)
    assert ab_users_needed(a, a) == math.inf
    assert interleaving_users_needed(np.array([1.0, -1.0])) == math.inf
    with pytest.raises(ConfigError, match="'alpha' and 'power'"):
        ab_users_needed(a, b, power=1.0)


def test_a_requests_generator_depends_on_seed_user_and_request_only() -> None:
    assert stable_hash("sim-u000001") == stable_hash("sim-u000001") != stable_hash("sim-u000002")
    draw = request_rng(3, "u1", "r1").random()
    assert request_rng(3, "u1", "r1").random() == draw
    others = (request_rng(4, "u1", "r1"), request_rng(3, "u2", "r1"), request_rng(3, "u1", "r2"))
    assert all(g.random() != draw for g in others)
    assert request_rng(3, None, "r1").random() == request_rng(3, "", "r1").random()
