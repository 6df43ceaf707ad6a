"""Related products: similar items first, complements in their slots, no duplicates, full pages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from chains import ask, chain

from moodboard.blend import slots as complement_slots
from moodboard.config import RelatedConfig
from moodboard.data import Request
from moodboard.errors import ConfigError, NotFoundError
from moodboard.ingest import Workspace
from moodboard.retrieve import TrainingData
from moodboard.retrieve.walks import GraphWalks
from moodboard.serve.registry import Engine
from moodboard.surfaces import Complements
from moodboard.surfaces.related import COMPLEMENT

SHIRTS = "Apparel/Topwear/Shirts"
JEANS = "Apparel/Bottomwear/Jeans"


def _sample(engine: Engine, n: int = 40) -> np.ndarray:
    return np.random.default_rng(0).choice(len(engine.catalog), n, replace=False)


def test_related_items_share_category_and_colour_far_more_than_random(
    engine: Engine, article: np.ndarray
) -> None:
    colour = engine.catalog.attribute("baseColour")
    rng = np.random.default_rng(1)
    same_type, same_colour, rand_type, rand_colour = [], [], [], []
    for i in _sample(engine):
        items = ask(engine.related, 12, item=int(i)).candidates.items
        assert len(items) == 12 and int(i) not in items
        same_type.append(np.mean(article[items] == article[i]))
        same_colour.append(np.mean(colour[items] == colour[i]))
        rand = rng.choice(len(engine.catalog), 12)
        rand_type.append(np.mean(article[rand] == article[i]))
        rand_colour.append(np.mean(colour[rand] == colour[i]))
    # measured: ~0.85 same article type (random ~0.1), colour ~0.35 (random ~0.1)
    assert np.mean(same_type) >= 0.7 and np.mean(same_type) >= 4 * np.mean(rand_type)
    assert np.mean(same_colour) >= 2 * np.mean(rand_colour)


def test_build_learns_planted_complements_and_stores_them(
    mini_engine: Workspace, engine: Engine
) -> None:
    assert engine.related.env.resources["complements"].of(SHIRTS)[0].category == JEANS
    assert engine.related.env.resources["complements"].of(JEANS)[0].category == SHIRTS
    dresses = engine.related.env.resources["complements"].of("Apparel/Dress/Dresses")
    assert dresses[0].category == "Accessories/Bags/Handbags" and dresses[0].lift > 1.5
    path = engine.path / engine.manifest["components"]["related/complements"]["path"]
    assert engine.manifest["components"]["related/complements"]["groups"] > 100
    assert Complements.load(path) == engine.related.env.resources["complements"]
    assert JEANS in json.loads(path.read_text())["complements"][SHIRTS][0].values()


def test_complementary_categories_fill_every_fourth_slot(
    engine: Engine, article: np.ndarray
) -> None:
    shirt = int(np.flatnonzero(engine.catalog.category == SHIRTS)[0])
    res = ask(engine.related, 24, item=shirt)
    items = res.candidates.items
    comp = np.isfinite(res.candidates.score(COMPLEMENT))
    assert list(np.flatnonzero(comp)) == [3, 7, 11, 15, 19, 23]
    assert set(article[items[comp]]) == {"Jeans"}
    assert np.mean(article[items[~comp]] == "Shirts") >= 0.8
    # a longer page keeps the shorter page's slots (pagination asks for k + more)
    longer = ask(engine.related, 40, item=shirt).candidates.items
    assert list(longer[:24]) == list(items)
    no_comp = chain("related", engine, config=RelatedConfig(complement_share=0))
    assert "Jeans" not in set(article[ask(no_comp, 24, item=shirt).candidates.items[:8]])


def test_complement_slots_are_evenly_spaced_and_prefix_stable() -> None:
    assert list(complement_slots(24, 0.25)) == [3, 7, 11, 15, 19, 23]
    assert list(complement_slots(10, 0.25)) == [3, 7]
    assert list(complement_slots(10, 0.0)) == []
    long, short = complement_slots(50, 0.3), complement_slots(20, 0.3)
    assert list(long[: len(short)]) == list(short)


def test_near_identical_images_are_removed(engine: Engine, image_vectors: np.ndarray) -> None:
    sim = image_vectors @ image_vectors.T
    np.fill_diagonal(sim, 0)
    with_twin = np.flatnonzero((sim >= 0.999).any(1))
    assert len(with_twin) >= 6  # the fixture keeps real byte-identical pairs
    keep_dups = chain("related", engine, config=RelatedConfig(dedup_threshold=None))
    shown_without_dedup = 0
    for i in with_twin[:10]:
        twins = np.flatnonzero(sim[i] >= 0.97)
        page = ask(engine.related, 24, item=int(i)).candidates.items
        assert not np.isin(twins, page).any()
        s = image_vectors[np.concatenate([[i], page])] @ image_vectors[page].T
        assert (s[1:][~np.eye(len(page), dtype=bool)] < 0.97).all() and (s[0] < 0.97).all()
        shown_without_dedup += np.isin(
            twins, ask(keep_dups, 24, item=int(i)).candidates.items
        ).any()
    assert shown_without_dedup >= 5  # without deduplication the twins do show up


def test_exclusions_and_full_pages_from_popular_when_sources_find_nothing(
    engine: Engine,
) -> None:
    item = 5
    first = ask(engine.related, 10, item=item).candidates.items
    res = ask(engine.related, 10, item=item, exclude=first[:5])
    assert not np.isin(first[:5], res.candidates.items).any() and len(res.candidates) == 10
    silent = chain("related", engine, config=RelatedConfig(sources=()))
    res = ask(silent, 30, item=item)
    assert len(res.candidates) == 30 and item not in res.candidates.items
    assert set(res.candidates.sources) == {"popular/trending"}
    popular = ask(engine.popular, 31).candidates.items
    assert list(res.candidates.items) == [i for i in popular if i != item][:30]
    everything = ask(chain("related", engine), len(engine.catalog) + 5, item=item)
    assert len(everything.candidates) == len(engine.catalog) - 1  # all but the item itself


def test_bad_arguments_say_what_to_fix(engine: Engine) -> None:
    n = len(engine.catalog)
    with pytest.raises(NotFoundError, match="No product with id 'nope' in the live catalog"):
        engine.related.run(Request(surface="related", item_id="nope"))
    with pytest.raises(ConfigError, match="'k' parameter of Surface 'related' must be an int >= 1"):
        ask(engine.related, 0, item=0)
    unknown = Request(surface="related", item_id=engine.catalog.ids.external([0])[0], k=5)
    page = ask(engine.related, 5, item=0).candidates.items
    same = engine.related.run(unknown.model_copy(update={"exclude": ("nope",)})).candidates
    assert list(same.items[:5]) == list(page)  # an unknown id to exclude is no error
    assert n == len(engine.catalog)


def test_related_gains_what_people_engage_with_together(
    engine: Engine, article: np.ndarray, text_vectors: np.ndarray, content_sources: dict
) -> None:
    # each watch is always engaged with the watch that looks least like it
    watches = np.flatnonzero(article == "Watches")[:10]
    all_watches = np.flatnonzero(article == "Watches")
    far = {
        int(w): int(all_watches[np.argmin(text_vectors[all_watches] @ text_vectors[w])])
        for w in watches
    }
    seqs = [np.array([w, f]) for w, f in far.items() for _ in range(5)]
    walks = GraphWalks().fit(TrainingData(len(engine.catalog), seqs))
    cfg = RelatedConfig(complement_share=0)
    none = Complements()
    walked = {**content_sources, "graph/walks": walks}
    with_walks = chain("related", engine, walked, cfg, complements=none)
    content = chain("related", engine, content_sources, cfg, complements=none)
    for watch, other in far.items():
        page = ask(with_walks, 12, item=watch).candidates
        assert other in page.items and other not in ask(content, 12, item=watch).candidates.items
        assert "graph/walks" in page.sources[list(page.items).index(other)]
        skip = ask(with_walks, 12, item=watch, exclude=[other]).candidates.items
        assert other not in skip
    cold = int(np.flatnonzero(article == "Jeans")[0])  # no engagement: walks reach nothing
    assert len(walks.from_items(np.array([cold]), 10)) == 0
    assert "graph/walks" not in "+".join(ask(with_walks, 12, item=cold).candidates.sources)


def test_the_served_related_and_board_chains_use_the_built_co_engagement_sources(
    engine: Engine,
) -> None:
    names = {"two_tower", "sequence", "graph/walks", "user_interests", "ease"}
    assert set(engine.recommenders) == names
    assert {"graph/walks", "user_interests"} <= set(engine.related.env.sources)
    assert "graph/walks" in engine.related.config.sources
    assert {"graph/walks", "user_interests"} <= set(engine.board.config.sources)
    assert engine.board.env.sources.keys() == engine.related.env.sources.keys()
