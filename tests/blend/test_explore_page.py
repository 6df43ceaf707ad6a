"""The explore page: deterministic items log propensity 1 and ``explored`` 0, picks log the
policy's per-slot marginal, and the cascade column is the page's probability so far."""

from __future__ import annotations

import numpy as np

from moodboard.blend import (
    CASCADE,
    EXPLORED,
    ThompsonSampling,
    explore_page,
    request_rng,
    slots,
)
from moodboard.data import Candidates
from moodboard.data import columns as C


def _page(request_id: str):
    main = Candidates(np.arange(30), {"utility": np.linspace(1, 0, 30)})
    pool = Candidates.from_scores(np.array([100, 101, 102, 103, 5]), np.zeros(5), "fresh")
    policy = ThompsonSampling().fit(np.array([100, 101, 101]), np.array([1.0, 0.0, 0.0]))
    at = slots(20, 0.15)  # positions 5, 12, 19
    choice = policy(pool.items, len(at), seed=3, user="u", request_id=request_id)
    return explore_page(main, pool, choice, at, 20), choice, at, policy, pool


def test_picks_sit_in_the_explore_slots_with_their_propensities() -> None:
    page, choice, at, _, pool = _page("r1")
    assert len(page) == 20
    explored = page.score(EXPLORED) > 0
    assert np.flatnonzero(explored).tolist() == at.tolist()
    assert page.items[explored].tolist() == pool.items[choice.order].tolist()
    np.testing.assert_allclose(page.score(C.PROPENSITY)[explored], choice.propensity, rtol=1e-6)
    assert (page.score(C.PROPENSITY)[~explored] == 1.0).all()
    # item 5 is in the pool: it is never a deterministic item, whether it was drawn or not
    assert 5 not in page.items[~explored].tolist()
    assert page.items[~explored].tolist() == [i for i in range(30) if i != 5][:17]


def test_the_cascade_column_is_the_probability_of_the_page_so_far() -> None:
    page, choice, at, policy, pool = _page("r2")
    casc = page.score(CASCADE)
    assert (casc[: at[0]] == 1.0).all()
    np.testing.assert_allclose(casc[at], choice.cascade, rtol=1e-6)
    np.testing.assert_allclose(casc[at[-1] :], choice.cascade[-1], rtol=1e-6)
    assert (np.diff(casc) <= 0).all()
    # the page's probability matches how often the policy serves this very page
    runs, same = 6_000, 0
    for r in range(runs):
        same += policy.choose(pool.items, 3, request_rng(9, "mc", r)).tolist() == (
            choice.order.tolist()
        )
    p = float(casc[-1])
    assert abs(same / runs - p) < 4 * np.sqrt(p * (1 - p) / runs) + 1e-3


def test_replaying_a_request_gives_the_same_page() -> None:
    first = _page("r7")[0]
    again = _page("r7")[0]
    assert first.items.tolist() == again.items.tolist()
    np.testing.assert_array_equal(first.score(C.PROPENSITY), again.score(C.PROPENSITY))
    pages = {tuple(_page(f"r{i}")[0].items) for i in range(12)}
    assert len(pages) > 1


def test_a_short_pool_leaves_the_other_slots_to_the_main_list() -> None:
    main = Candidates(np.arange(10), {"utility": np.linspace(1, 0, 10)})
    pool = Candidates.from_scores(np.array([50]), np.zeros(1), "fresh")
    choice = ThompsonSampling().fit(np.array([50]), np.array([1.0]))(
        pool.items, 3, seed=0, user=None, request_id=1
    )
    page = explore_page(main, pool, choice, np.array([1, 4, 7]), 8)
    assert page.items.tolist() == [0, 50, 1, 2, 3, 4, 5, 6]
    assert page.score(EXPLORED).tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert page.score(C.PROPENSITY).tolist() == [1.0] * 8  # a pool of one: no randomness
