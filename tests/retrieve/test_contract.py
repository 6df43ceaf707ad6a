"""Every registered candidate source passes the one contract (``moodboard.testing``)."""

from __future__ import annotations

import pytest

from moodboard.retrieve.registry import SOURCES
from moodboard.testing import CandidateSourceContract


@pytest.fixture(scope="class", params=sorted(SOURCES))
def source_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestEveryRegisteredSource(CandidateSourceContract):
    """The contract, once, over the registry."""


def test_the_registry_names_every_source_of_the_issue() -> None:
    assert set(SOURCES) >= {
        "lexical/bm25",
        "dense/text",
        "visual/image",
        "popular/trending",
        "two_tower",
        "sequence",
        "graph/walks",
        "user_interests",
        "popularity",
        "als",
        "ease",
        "itemknn",
    }
