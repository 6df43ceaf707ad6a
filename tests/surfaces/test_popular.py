"""The popular surface, the shared page filler, and surfaces declared from config."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from chains import ask, chain

from moodboard.blend import CATALOG_FALLBACK, fill_page
from moodboard.config import RelatedConfig, SearchConfig, Settings, SurfacesSettings, load_settings
from moodboard.data import Candidates, ItemFilter
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine
from moodboard.surfaces.related import COMPLEMENT

SAMPLE = Path(__file__).parents[2] / "configs" / "moodboard.toml"


def test_popular_is_ordered_by_popularity_within_filters(
    engine: Engine, article: np.ndarray
) -> None:
    scores = engine.sources["popular/trending"].scores
    res = ask(engine.popular, 24)
    items = res.candidates.items
    assert len(items) == 24 and (np.diff(scores[items]) <= 0).all()
    assert scores[items[0]] == scores.max() > 0
    bags = ask(
        engine.popular, 10, item_filter=ItemFilter(attributes={"articleType": ("Handbags",)})
    )
    assert set(article[bags.candidates.items]) == {"Handbags"}
    rest = ask(engine.popular, 24, exclude=items[:12]).candidates.items
    assert list(rest[:12]) == list(items[12:])


def test_a_filter_leaving_few_items_gives_just_those(engine: Engine, article: np.ndarray) -> None:
    few = ItemFilter(attributes={"articleType": ("Jeans",)})
    jeans = np.flatnonzero(article == "Jeans")
    assert len(ask(engine.popular, len(jeans) + 20, item_filter=few).candidates) == len(jeans)
    nothing = ItemFilter(attributes={"articleType": ("Spacesuits",)})
    assert len(ask(engine.popular, 24, item_filter=nothing).candidates) == 0
    assert len(ask(engine.popular, 24, exclude=np.arange(len(engine.catalog))).candidates) == 0


def test_search_fills_its_page_from_popular_when_sources_find_nothing(engine: Engine) -> None:
    search = chain("search", engine, config=SearchConfig(), encode=None)
    res = ask(search, 24, query="qqqzzxv")  # no dense encoder, no lexical match
    assert len(res.candidates) == 24
    assert set(res.candidates.sources[:24]) == {"popular/trending"}
    assert list(res.candidates.items[:24]) == list(ask(engine.popular, 24).candidates.items)


def test_fill_page_falls_back_to_the_catalog_without_popular(engine: Engine) -> None:
    some = Candidates.from_scores([7, 3], np.array([0.9, 0.8]), "dense/text")
    page = fill_page(some, 6, engine.catalog, {}, ("popular/trending",), exclude=np.array([0]))
    assert list(page.items) == [7, 3, 1, 2, 4, 5]
    assert list(page.sources) == ["dense/text"] * 2 + [CATALOG_FALLBACK] * 4
    full = fill_page(some, 2, engine.catalog, engine.sources, ("popular/trending",))
    assert full is some  # never cut, never padded


def test_the_sample_config_declares_every_surface(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tomllib.loads(SAMPLE.read_text())["surfaces"]
    assert set(raw) == set(SurfacesSettings.model_fields)
    for name, model in SurfacesSettings.model_fields.items():
        fields = set(model.annotation.model_fields)  # type: ignore[union-attr]
        # every key is stated except an unset (None) default, which TOML cannot spell
        unset = {f for f in fields if getattr(model.default, f) is None}
        assert set(raw[name]) == fields - unset, name
    monkeypatch.setenv("MOODBOARD_CONFIG", str(SAMPLE))
    monkeypatch.setenv("MOODBOARD_SURFACES__RELATED__COMPLEMENT_SHARE", "0.5")
    s = load_settings()
    assert s.surfaces.related.complement_share == 0.5
    assert s.surfaces.search == SearchConfig() and s.surfaces.board.max_centroids == 4
    with pytest.raises(ValueError, match="complement_share"):
        RelatedConfig(complement_share=1.5)
    with pytest.raises(ValueError, match="extra"):
        RelatedConfig.model_validate({"sources": ["dense/text"], "sourcez": []})


def test_the_engine_builds_its_surfaces_from_settings(
    mini_engine: Workspace, engine: Engine
) -> None:
    shirt = int(np.flatnonzero(engine.catalog.category == "Apparel/Topwear/Shirts")[0])
    assert np.isfinite(ask(engine.related, 24, item=shirt).candidates.score(COMPLEMENT)).sum() == 6
    settings = Settings(
        surfaces=SurfacesSettings(
            related=RelatedConfig(complement_share=0.0, sources=("dense/text",)),
        )
    )
    other = Engine.load(mini_engine, settings=settings)
    res = ask(other.related, 24, item=shirt)
    assert COMPLEMENT not in res.candidates.scores
    assert set(res.candidates.sources) == {"dense/text"}
    assert other.image_encoder is other.image_encoder
    with pytest.raises(ConfigError, match="'k' parameter of Surface 'popular'"):
        ask(other.popular, 0)
