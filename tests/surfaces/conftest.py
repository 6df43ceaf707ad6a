"""The surface tests read the shared mini engine (``tests/mini.py``): real fashion products
with real near-duplicate images, simulated shoppers and planted co-engagement (men click a
shirt and then jeans, women a dress and then a handbag)."""

from __future__ import annotations

import numpy as np
import pytest

from moodboard.config import Settings
from moodboard.ingest import Workspace
from moodboard.retrieve import TrainingData
from moodboard.retrieve.walks import GraphWalks
from moodboard.serve.registry import Engine


@pytest.fixture(scope="session")
def engine(mini_engine: Workspace) -> Engine:
    """The built engine with the default settings."""
    return Engine.load(mini_engine, settings=Settings())


@pytest.fixture(scope="session")
def article(engine: Engine) -> np.ndarray:
    """Each item's article type."""
    return engine.catalog.attribute("articleType")


@pytest.fixture(scope="session")
def image_vectors(engine: Engine) -> np.ndarray:
    """Each item's image embedding (unit rows)."""
    return engine.sources["visual/image"].vectors


@pytest.fixture(scope="session")
def paired_walks(engine: Engine, article: np.ndarray) -> tuple[GraphWalks, dict[int, int]]:
    """graph/walks on sessions that always pair a watch with one particular pair of heels."""
    watches = np.flatnonzero(article == "Watches")[:10]
    heels = np.flatnonzero(article == "Heels")[:10]
    pairs = dict(zip(watches.tolist(), heels.tolist(), strict=True))
    seqs = [np.array([w, h]) for w, h in pairs.items() for _ in range(5)]
    return GraphWalks().fit(TrainingData(len(engine.catalog), seqs)), pairs


@pytest.fixture(scope="session")
def text_vectors(engine: Engine) -> np.ndarray:
    """Each item's text embedding (unit rows)."""
    return engine.sources["dense/text"].vectors


@pytest.fixture(scope="session")
def content_sources(engine: Engine) -> dict:
    """The engine's sources without the learned full-ranking ones (content and popularity)."""
    return {n: s for n, s in engine.sources.items() if not s.full_ranking}
