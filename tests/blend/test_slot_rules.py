"""Slot rules: never more than ``max_items`` of a value in a window, over many seeded random
pages, infeasible ones included (what cannot be placed is deferred, after the placed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from moodboard.blend import DEFERRED, SlotRule, SlotRules, SlotRulesConfig
from moodboard.data import Candidates
from moodboard.errors import ConfigError


def _violations(codes: np.ndarray, rule: SlotRule) -> int:
    """How many windows of the sequence break the rule."""
    bad = 0
    for end in range(1, len(codes) + 1):
        window = codes[max(0, end - rule.window) : end]
        _, counts = np.unique(window[window >= 0], return_counts=True)
        bad += int((counts > rule.max_items).any())
    return bad


def test_a_hand_checked_page() -> None:
    category = np.array([0, 0, 0, 1, 1, 2])
    cand = Candidates(np.arange(6), {"utility": np.linspace(1, 0, 6)})
    rules = SlotRules(
        SlotRulesConfig(rules=(SlotRule(attribute="category", max_items=1, window=2),))
    )
    out = rules(cand, {"category": category})
    # 0 (cat 0), 3 (cat 1), 1 (cat 0), 4 (cat 1), 2 (cat 0), 5 (cat 2)
    assert out.items.tolist() == [0, 3, 1, 4, 2, 5]
    assert out.score(DEFERRED).tolist() == [0] * 6


def test_an_infeasible_page_defers_what_cannot_be_placed() -> None:
    category = np.array([0, 0, 0, 0, 1])
    cand = Candidates(np.arange(5), {"utility": np.linspace(1, 0, 5)})
    rules = SlotRules(
        SlotRulesConfig(rules=(SlotRule(attribute="category", max_items=1, window=3),))
    )
    out = rules(cand, {"category": category})
    # 0, 4, then nothing fits (a third position would hold two of category 0): 1, 2, 3 wait
    assert out.items.tolist() == [0, 4, 1, 2, 3]
    assert out.score(DEFERRED).tolist() == [0, 0, 1, 1, 1]


def test_unknown_values_never_count() -> None:
    brand = np.array([-1, -1, -1, 5])
    cand = Candidates(np.arange(4), {"utility": np.linspace(1, 0, 4)})
    rules = SlotRules(SlotRulesConfig(rules=(SlotRule(attribute="brand", max_items=1, window=4),)))
    out = rules(cand, {"brand": brand})
    assert out.items.tolist() == [0, 1, 2, 3]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    n_values=st.integers(1, 6),
    max_items=st.integers(1, 3),
    extra=st.integers(1, 5),
    depth=st.integers(1, 80),
)
def test_rules_hold_on_every_placed_position(
    seed: int, n: int, n_values: int, max_items: int, extra: int, depth: int
) -> None:
    rng = np.random.default_rng(seed)
    n_items = 100
    attrs = {
        "category": rng.integers(-1, n_values, n_items),
        "brand": rng.integers(0, n_values + 2, n_items),
    }
    rule_set = (
        SlotRule(attribute="category", max_items=max_items, window=max_items + extra),
        SlotRule(attribute="brand", max_items=1, window=1 + extra),
    )
    items = rng.choice(n_items, n, replace=False)
    cand = Candidates(items, {"utility": rng.random(n)})
    out = SlotRules(SlotRulesConfig(rules=rule_set, depth=depth))(cand, attrs)

    assert sorted(out.items.tolist()) == sorted(items.tolist())  # nothing lost, nothing added
    deferred = out.score(DEFERRED).astype(bool)
    if deferred.any():  # the placed, then the deferred
        placed = int(np.argmax(deferred))
        assert deferred[placed:].all()
    else:
        placed = min(depth, n)
    for rule in rule_set:
        assert _violations(attrs[rule.attribute][out.items[:placed]], rule) == 0
    if deferred.any():  # stuck: no waiting candidate fits the next position
        for item in out.items[placed:]:
            seq = np.append(out.items[:placed], item)
            assert any(_violations(attrs[r.attribute][seq], r) for r in rule_set)
    # the placed are in the incoming order whenever the rules allow it: the first placed is
    # the first candidate, and everything after the depth keeps its order
    if n and placed:
        assert out.items[0] == items[0]
    if not deferred.any():
        rest = [i for i in items.tolist() if i not in set(out.items[:placed].tolist())]
        assert out.items[placed:].tolist() == rest


def test_a_missing_attribute_is_an_error_that_names_it() -> None:
    cand = Candidates(np.arange(3), {"utility": [1.0, 0.5, 0.2]})
    with pytest.raises(ConfigError, match=r"\['brand'\]"):
        SlotRules()(cand, {"category": np.zeros(3, dtype=np.int64)})


def test_a_rule_that_constrains_nothing_is_rejected() -> None:
    with pytest.raises(ValidationError, match="max_items"):
        SlotRule(attribute="category", max_items=3, window=3)
    cfg = SlotRulesConfig()
    assert SlotRulesConfig.model_validate_json(cfg.model_dump_json()) == cfg
