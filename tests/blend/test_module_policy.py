"""The module policy's probabilities are exact, and ``compose`` tiles the page."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.blend import request_rng
from moodboard.blend.modules import (
    EXPLORED,
    MODULE,
    PROPENSITY,
    compose,
    module_propensities,
    order_modules,
)
from moodboard.data import Candidates


def test_each_row_is_a_distribution_and_epsilon_zero_is_the_greedy_order() -> None:
    scores = np.array([0.3, 1.0, 0.6, 0.8])
    p = module_propensities(scores, rows=3, epsilon=0.2)
    assert p.shape == (4, 3) and np.allclose(p.sum(axis=0), 1.0)
    assert ((p > 0) & (p <= 1)).all()
    assert p[1, 0] == pytest.approx(0.8 + 0.05) and p[0, 0] == pytest.approx(0.05)
    layout = order_modules(scores, 3, 0.0, np.random.default_rng(1))
    assert layout.order == (1, 3, 2) and layout.propensities == (1.0, 1.0, 1.0)
    assert not layout.explored
    with pytest.raises(ValueError, match="epsilon"):
        module_propensities(scores, 3, 1.5)


def test_the_drawn_frequencies_match_the_logged_propensities() -> None:
    scores = np.array([0.3, 1.0, 0.6, 0.8])
    p = module_propensities(scores, rows=3, epsilon=0.3)
    n = 20_000
    counts = np.zeros_like(p)
    for key in range(n):  # one request per key, seeded as the feed seeds it
        layout = order_modules(scores, 3, 0.3, request_rng(7, "shopper", f"modules:{key}"))
        for j, m in enumerate(layout.order):
            counts[m, j] += 1
            assert layout.propensities[j] == pytest.approx(p[m, j])
    freq = counts / n
    tol = 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9
    assert (np.abs(freq - p) <= tol).all(), (freq, p)


def _cands(items: list[int], source: str) -> Candidates:
    return Candidates.from_scores(items, np.linspace(1, 0, len(items)), source)


def test_compose_tiles_rows_then_the_grid_without_their_items() -> None:
    modules = [_cands([1, 2, 3, 4], "a"), _cands([3, 5, 6, 7], "b"), _cands([8, 9], "c")]
    layout = order_modules(np.array([0.5, 1.0, 0.1]), 2, 0.0, np.random.default_rng(0))
    grid = _cands([5, 10, 1, 11, 12], "grid")
    page, rows = compose(modules, layout, 3, grid)
    assert rows == [(1, 0, 3), (0, 3, 6)]  # module b first, then a without b's item 3
    assert page.items.tolist() == [3, 5, 6, 1, 2, 4, 10, 11, 12]
    assert len(set(page.items.tolist())) == len(page)
    m = page.score(MODULE)
    assert m[:3].tolist() == [1, 1, 1] and m[3:6].tolist() == [0, 0, 0]
    assert np.isnan(m[6:]).all() and (page.score(PROPENSITY)[6:] == 1).all()
    assert (page.score(EXPLORED) == 0).all()
