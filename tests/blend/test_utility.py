"""The utility: weighted per-objective scores, hide negative, missing columns named."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from moodboard.blend import Utility, UtilityConfig
from moodboard.data import Candidates
from moodboard.errors import ConfigError


def _cand(**cols: list[float]) -> Candidates:
    n = len(next(iter(cols.values())))
    return Candidates(np.arange(10, 10 + n), {k: np.asarray(v) for k, v in cols.items()})


def test_utility_is_the_weighted_sum_and_orders_the_page() -> None:
    cand = _cand(p_click=[0.1, 0.5, 0.2], p_purchase=[0.05, 0.0, 0.01], retrieval=[3, 2, 1])
    out = Utility(UtilityConfig(weights={"p_click": 1.0, "p_purchase": 10.0}))(cand)
    # 0.1 + 0.5 = 0.6, 0.5, 0.2 + 0.1 = 0.3
    assert out.items.tolist() == [10, 11, 12]
    np.testing.assert_allclose(out.score("utility"), [0.6, 0.5, 0.3], rtol=1e-6)
    assert set(out.scores) == {"p_click", "p_purchase", "retrieval", "utility"}


def test_hide_is_a_negative_objective_by_default() -> None:
    cand = _cand(
        p_click=[0.30, 0.25],
        p_save=[0.0, 0.0],
        p_add_to_cart=[0.0, 0.0],
        p_purchase=[0.0, 0.0],
        p_hide=[0.20, 0.0],
    )
    out = Utility()(cand)
    assert out.items.tolist() == [11, 10]  # the likelier click is likelier hidden
    assert out.score("utility")[1] < 0


def test_an_ltv_column_can_carry_a_weight() -> None:
    cand = _cand(p_click=[0.2, 0.2], ltv=[1.0, 5.0])
    out = Utility(UtilityConfig(weights={"p_click": 1.0, "ltv": 0.1}))(cand)
    assert out.items.tolist() == [11, 10]


def test_a_missing_head_column_is_an_error_that_names_it() -> None:
    cand = _cand(p_click=[0.2, 0.1])
    with pytest.raises(ConfigError, match=r"p_purchase.*p_click"):
        Utility(UtilityConfig(weights={"p_click": 1.0, "p_purchase": 5.0}))(cand)
    # a zero weight reads nothing
    out = Utility(UtilityConfig(weights={"p_click": 1.0, "p_purchase": 0.0}))(cand)
    assert out.items.tolist() == [10, 11]


def test_rows_beyond_the_rankers_depth_follow_in_their_order() -> None:
    cand = _cand(p_click=[np.nan, 0.1, np.nan, 0.9])
    out = Utility(UtilityConfig(weights={"p_click": 1.0}))(cand)
    assert out.items.tolist() == [13, 11, 10, 12]
    u = out.score("utility")
    assert u[1] > u[2] > u[3]


def test_config_round_trips_and_rejects_what_it_does_not_know() -> None:
    cfg = UtilityConfig(weights={"p_click": 1.0, "p_hide": -2.0})
    assert UtilityConfig.model_validate_json(cfg.model_dump_json()) == cfg
    with pytest.raises(ValidationError):
        UtilityConfig(weight={"p_click": 1.0})
    with pytest.raises(ValidationError, match="non-zero"):
        UtilityConfig(weights={"p_click": 0.0})


def test_empty_candidates_stay_empty() -> None:
    out = Utility()(Candidates.empty())
    assert len(out) == 0
    assert "utility" in out.scores
