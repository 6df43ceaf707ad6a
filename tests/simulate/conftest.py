"""Shared fixtures of the simulator tests."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.simulate import World


@pytest.fixture(scope="module")
def world() -> World:
    """1,200 items with the five taste attributes of the fashion catalog, drawn at random."""
    rng = np.random.default_rng(0)
    sizes = {"gender": 2, "articleType": 12, "baseColour": 8, "usage": 3, "season": 4}
    n = 1_200
    return World(
        item_ids=np.array([f"p{i}" for i in range(n)], dtype=object),
        codes={a: rng.integers(0, k, n).astype(np.int32) for a, k in sizes.items()},
        vocab={a: [f"{a}{j}" for j in range(k)] for a, k in sizes.items()},
        prices=None,
        titles=np.array([f"item {i}" for i in range(n)], dtype=object),
    )
