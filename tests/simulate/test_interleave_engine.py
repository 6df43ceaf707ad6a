"""Interleaving through the engine: the interleaved pages, and the mini engine's fused feed
against its shuffled feed, where interleaving and the A/B test must agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mini import mini_settings
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.simulate.arms import parse_arm
from moodboard.simulate.interleave import InterleavedPages, measure_interleaving
from moodboard.simulate.sessions import PageAsk, ShownPage


def _ask(cursor: int, k: int, request_id: str) -> PageAsk:
    # only the page, the request id and the session's order generator matter here
    rng = np.random.default_rng([7, 1])
    return PageAsk("feed", None, {}, None, None, None, (), request_id, 0, k, cursor, rng)  # type: ignore[arg-type]


def _source(ranking: list[int]) -> Callable[[PageAsk], ShownPage]:
    def pages(ask: PageAsk) -> ShownPage:
        items = np.array(ranking[ask.cursor : ask.cursor + ask.k], dtype=np.int64)
        return ShownPage(items, np.ones(len(items)))

    return pages


def test_interleaved_pages_continue_one_draft_and_credit_each_team() -> None:
    a, b = list(range(10)), list(range(20, 30))
    pages = InterleavedPages(_source(a), _source(b))
    first, second = pages(_ask(0, 4, "r-0")), pages(_ask(4, 4, "r-1"))
    both = np.r_[first.items, second.items]
    # the second page continues the first: eight distinct items, four of each ranking in order
    assert len(set(both.tolist())) == 8
    np.testing.assert_array_equal(both[both < 20], a[:4])
    np.testing.assert_array_equal(both[both >= 20], b[:4])
    # a click on one of A's items and one of B's on the first page; the page is then forgotten
    items, teams = pages.pages["r-0"]
    clicked = np.array([items[teams == 0][0], items[teams == 1][0]])
    assert pages.credit("r-0", clicked) == (1, 1)
    assert pages.credit("r-0", clicked) == (0, 0)
    assert pages.credit("r-1", np.array([items[0]])) == (0, 0)  # not on that page


def test_fused_feed_wins_over_shuffled_in_interleaving_and_in_ab(
    mini_engine: Workspace, tmp_path: Path
) -> None:
    s = mini_settings()
    s.simulate = s.simulate.model_copy(
        update={"users": 32, "days": 1, "sessions_per_day": 5.0, "surface_mix": {"feed": 1.0}}
    )
    fused = parse_arm("fused=surfaces.feed.ranker=rank/noop")
    # the shuffle ranker over the first 1,000 candidates of each source: a clearly worse feed
    shuffled = parse_arm("shuffled=surfaces.feed.ranker=rank/shuffle;surfaces.feed.per_source=1000")
    run = measure_interleaving(mini_engine, s, fused, shuffled, folder=tmp_path / "arms")
    v = run.verdict
    assert v.winner == "A" and v.p_value < 0.05 and v.wins_a > v.wins_b
    assert v.users == run.users == len(run.ab_a) == 32
    assert v.wins_a + v.wins_b + v.ties == 32 and v.delta > 0 and v.ci[0] < v.delta < v.ci[1]
    # every click on an interleaved page went to a team; the A/B arms ran in their copies
    assert run.clicks_a.sum() > run.clicks_b.sum() > 0
    assert (tmp_path / "arms" / "fused").is_dir() and (tmp_path / "arms" / "shuffled").is_dir()
    # the A/B test agrees: fewer clicks per shopper with the shuffled feed, significantly
    assert run.ab_diff > 0 and run.ab_ci[0] > 0 and run.agree
    # per-page credit by default: a shopper's won pages are at most their credited clicks
    assert run.credit == "page" and (run.pages_a <= run.clicks_a).all()
    assert (run.pages_b <= run.clicks_b).all() and run.pages_a.sum() > run.pages_b.sum()
    assert run.other_verdict.users == 32 and np.isfinite(run.other_users_interleaving)
    assert np.isfinite(run.users_ab) and np.isfinite(run.users_interleaving)
    assert run.ratio == pytest.approx(run.users_ab / run.users_interleaving)
    out = run.as_dict()
    assert out["arms"] == {"A": "fused", "B": "shuffled"} and out["agree"] is True
    assert out["interleaving"]["winner"] == "A" and out["metric"] == "clicks_per_user"
    assert out["credit"] == "page" and out["interleaving_click"]["users"] == 32
    with pytest.raises(ConfigError, match="'page' or 'click'"):
        measure_interleaving(mini_engine, s, fused, shuffled, credit="query")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="distinct names"):
        measure_interleaving(mini_engine, s, fused, fused)
