"""The engine's query vectors: the model's own vectors, each text encoded once while kept."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from moodboard.understand.query_vectors import QueryVectors
from moodboard.understand.text import TextEncoder


class CountingEncoder(TextEncoder):
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def encode(self, texts: Sequence[str], cache=None) -> np.ndarray:  # type: ignore[override]
        self.asked += list(texts)
        return super().encode(texts, cache)


@pytest.fixture(scope="module")
def encoder() -> CountingEncoder:
    return CountingEncoder()


def test_kept_vectors_are_the_encoders_and_each_text_is_encoded_once(
    encoder: CountingEncoder,
) -> None:
    vectors = QueryVectors(encoder, size=None)
    texts = ["red dress", "blue jeans", "red dress", "white sneakers"]
    vectors.prime(texts)
    assert sorted(encoder.asked) == ["blue jeans", "red dress", "white sneakers"]
    encoder.asked.clear()
    got = vectors(texts)
    assert encoder.asked == []  # all kept: the model is not asked again
    np.testing.assert_allclose(got, encoder.encode(texts), atol=1e-5)
    got[0] = 0  # callers get a copy
    assert np.abs(vectors(["red dress"])[0]).sum() > 0


def test_the_least_recently_used_text_leaves_first(encoder: CountingEncoder) -> None:
    vectors = QueryVectors(encoder, size=2)
    vectors(["a lamp", "a sofa"])
    vectors(["a lamp"])  # "a sofa" is now the least recently used
    vectors(["a rug"])
    encoder.asked.clear()
    vectors(["a lamp", "a rug"])
    assert encoder.asked == []
    vectors(["a sofa"])
    assert encoder.asked == ["a sofa"]
