"""Attribute queries on the mini engine (the real fashion catalog, 16 article types): the
query set is built from the catalog's own combinations, and the served search chain puts the
items with every named attribute first (``moodboard evaluate attributes`` on the demo is the
README's figure; these floors sit a little under what this configuration measured)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from moodboard.cli import app
from moodboard.data import Request
from moodboard.errors import InputError
from moodboard.evaluate.attributes import (
    KINDS,
    AttributeEvalConfig,
    attribute_precision,
    attribute_queries,
)
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine

SET = AttributeEvalConfig(combos=30, seed=3)  # 84 queries, about 6 s


@pytest.fixture(scope="module")
def engine(mini_engine: Workspace) -> Engine:
    return Engine.load(mini_engine)


def test_queries_come_from_combinations_the_catalog_has(engine: Engine) -> None:
    queries = attribute_queries(engine.catalog, SET)
    assert queries == attribute_queries(engine.catalog, SET)  # seeded
    assert queries != attribute_queries(engine.catalog, SET.model_copy(update={"seed": 4}))
    kinds = Counter(q.kind for q in queries)
    assert set(kinds) == {"canonical", "plural", "gender_word", "synonym", "held_out_synonym"}
    assert kinds["canonical"] == 30 and {q.split for q in queries} == {"tune", "held_out"}
    for q in queries:
        ok = np.ones(len(engine.catalog), dtype=bool)
        for attr, values in q.wanted.items():
            ok &= np.isin(engine.catalog.attribute(attr).astype(str), values)
        assert ok.sum() >= SET.min_items, q


def test_attribute_queries_put_full_matches_first(engine: Engine) -> None:
    report = attribute_precision(engine.search, attribute_queries(engine.catalog, SET))
    kinds = {k: v["precision"] for k, v in report.by_kind.items()}
    # measured on this set: overall 0.99; tuned kinds 0.98 to 1.0, held-out synonyms 0.96
    assert report.overall >= 0.95, report.worst[:5]
    for kind in ("canonical", "plural", "gender_word", "synonym"):
        assert kinds[kind] >= 0.93, (kind, report.worst[:5])
    assert kinds["held_out_synonym"] >= 0.85


def test_fewer_matches_than_the_page_keep_the_rest(engine: Engine) -> None:
    """Must-match-first is an order, not a filter: the page still fills."""
    page = engine.search.run(Request(surface="search", query="purple dresses for women", k=30))
    items = page.candidates.items[:30]
    colours = engine.catalog.attribute("baseColour")[items]
    types = engine.catalog.attribute("articleType")[items]
    full = (colours == "Purple") & (types == "Dresses")
    assert len(items) == 30 and 0 < full.sum() < 30
    assert full[: full.sum()].all()  # every full match before every other item


def test_a_catalog_without_those_attributes_is_refused(engine: Engine) -> None:
    with pytest.raises(InputError, match="at least 100000"):
        attribute_queries(engine.catalog, AttributeEvalConfig(min_items=100_000))


def test_the_command_prints_precision_by_kind(mini_engine: Workspace) -> None:
    res = CliRunner().invoke(
        app, ["evaluate", "attributes", "-w", str(mini_engine.root), "--combos", "6", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["combos"] == 6 and out["precision@10"] >= 0.8
    assert set(out["by_kind"]) <= {*KINDS} and "canonical" in out["by_kind"]
    assert out["params"]["version"] == mini_engine.current_artifact()
