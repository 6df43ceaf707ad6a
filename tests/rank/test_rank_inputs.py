"""The multi-head ranker's input contract checks its shapes and slices rows consistently."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.rank.inputs import HEADS, MultiHeadInputs


def _batch(b: int = 4, n: int = 3) -> MultiHeadInputs:
    return MultiHeadInputs(
        history_items=np.arange(b * n, dtype=np.int64).reshape(b, n),
        history_actions=np.ones((b, n), dtype=np.int64),
        history_age_s=np.full((b, n), 5.0, dtype=np.float32),
        item=np.arange(b, dtype=np.int64),
        dense=np.arange(b * 2, dtype=np.float32).reshape(b, 2),
        dense_names=("popularity", "user_click"),
        position=np.arange(1, b + 1, dtype=np.int64),
        labels=np.zeros((b, len(HEADS)), dtype=np.float32),
    )


def test_take_keeps_rows_aligned_across_fields() -> None:
    batch = _batch()
    picked = batch.take(np.array([2, 0]))
    assert len(picked) == 2
    assert picked.item.tolist() == [2, 0]
    assert picked.history_items[0].tolist() == batch.history_items[2].tolist()
    assert picked.position.tolist() == [3, 1]
    assert picked.dense_column("user_click").tolist() == [5.0, 1.0]
    assert picked.dense_names == batch.dense_names


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("history_age_s", np.zeros((4, 2), dtype=np.float32), "history_age_s"),
        ("labels", np.zeros((4, 4), dtype=np.float32), "labels"),
        ("item", np.arange(4, dtype=np.int32), "int64"),
        ("dense_names", ("popularity",), "dense"),
    ],
)
def test_a_misshapen_field_is_refused_by_name(field: str, value: object, words: str) -> None:
    batch = _batch()
    values = {name: getattr(batch, name) for name in batch.__dataclass_fields__}
    values[field] = value
    with pytest.raises(ValueError, match=words):
        MultiHeadInputs(**values)
