import numpy as np
import pytest
from pydantic import ValidationError

from moodboard.data import Candidates, Event, IdMap, Product
from moodboard.errors import NotFoundError


def test_candidates_are_immutable_and_methods_return_new_objects() -> None:
    c = Candidates.from_scores([3, 1, 2], np.array([0.1, 0.9, 0.5]), "dense/text")
    with pytest.raises(ValueError):
        c.items[0] = 7
    s = c.sort_by("retrieval", k=2)
    assert s.items.tolist() == [1, 2]
    assert c.items.tolist() == [3, 1, 2]
    assert s.sources.tolist() == ["dense/text", "dense/text"]
    u = s.with_score("utility", np.array([1.0, 2.0]))
    assert set(u.scores) == {"retrieval", "utility"} and set(s.scores) == {"retrieval"}
    assert c.exclude([1]).items.tolist() == [3, 2]


def test_candidates_reject_misaligned_columns() -> None:
    with pytest.raises(ValueError, match="must have 2 values"):
        Candidates(np.array([1, 2]), {"p_click": np.array([0.1])})


def test_idmap_round_trip_and_cold_policy() -> None:
    m = IdMap(["a", "b", "c"])
    assert m.indices(["c", "a"]).tolist() == [2, 0]
    assert m.external([1, 2]) == ["b", "c"]
    assert m.indices(["a", "zz"], missing=-1).tolist() == [0, -1]
    with pytest.raises(NotFoundError, match="zz"):
        m.indices(["zz"])
    with pytest.raises(ValueError, match="unique"):
        IdMap(["a", "a"])


def test_product_and_event_validation() -> None:
    p = Product(id="1", title="Navy shirt", category="Apparel/Topwear/Shirts", price=10)
    assert p.category_path == ("Apparel", "Topwear", "Shirts")
    with pytest.raises(ValidationError):
        Product(id="1", title="x", price=-1)
    with pytest.raises(ValidationError):
        Event(event_id="e", ts="2026-01-01T00:00:00", user_id="u", type="clack")
    e = Event(event_id="e", ts="2026-01-01T00:00:00", user_id="u", type="click", item_id="1")
    assert e.as_row()["type"] == "click"
