"""The sample config parses, states every default, and env vars override it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from moodboard.config import Settings, load_settings

SAMPLE = Path(__file__).parents[1] / "configs" / "moodboard.toml"


def test_sample_config_loads_and_equals_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODBOARD_CONFIG", str(SAMPLE))
    from_file = load_settings()
    monkeypatch.delenv("MOODBOARD_CONFIG")
    monkeypatch.chdir(SAMPLE.parent.parent / "tests")  # no moodboard.toml here
    assert from_file == Settings()
    raw = tomllib.loads(SAMPLE.read_text())
    assert set(raw) >= {"workspace", "ingest", "simulate", "serve"}
    assert set(raw["simulate"]["click_model"]) == set(Settings().simulate.click_model.model_fields)
    # every component's config is settable and documented with all its keys
    defaults = Settings()
    for name in ("lexical", "dense", "visual", "popular"):
        section = getattr(defaults.retrieve, name)
        assert set(raw["retrieve"][name]) == set(type(section).model_fields), name
    assert set(raw["understand"]) == set(type(defaults.understand).model_fields)
    assert set(raw["bots"]) == set(type(defaults.bots).model_fields)
    assert set(raw["autocomplete"]) == set(type(defaults.autocomplete).model_fields)
    assert set(raw["autocomplete"]["model"]) == set(type(defaults.autocomplete.model).model_fields)
    sim_keys = set(type(defaults.simulate).model_fields) - {"click_model"}
    assert set(raw["simulate"]) - {"click_model"} == sim_keys
    feed = raw["surfaces"]["feed"]
    assert {"two_tower", "sequence", "walks", "interests"} <= set(feed)
    compose = defaults.surfaces.feed.compose
    assert set(feed["compose"]) == set(type(compose).model_fields)
    for name in ("diversity", "fresh"):
        assert set(feed["compose"][name]) == set(type(getattr(compose, name)).model_fields)


def test_component_sections_configure_the_components(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moodboard.retrieve import BM25Source, LexicalConfig

    cfg = tmp_path / "moodboard.toml"
    cfg.write_text(
        "[retrieve.lexical]\nfuzzy = false\n[retrieve.dense]\nexact_below = 10\n"
        "[understand]\nspelling = false\n[surfaces.feed.walks]\nrestart = 0.2\n"
    )
    monkeypatch.setenv("MOODBOARD_CONFIG", str(cfg))
    s = load_settings()
    assert s.retrieve.lexical == LexicalConfig(fuzzy=False)
    assert BM25Source(s.retrieve.lexical).config.fuzzy is False
    assert s.retrieve.dense.exact_below == 10 and s.understand.spelling is False
    assert s.surfaces.feed.walks.restart == 0.2
    cfg.write_text("[retrieve.popular]\nhalf_life = 3\n")
    with pytest.raises(ValidationError, match="half_life"):
        load_settings()


def test_env_overrides_file_and_bad_values_name_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODBOARD_CONFIG", str(SAMPLE))
    monkeypatch.setenv("MOODBOARD_INGEST__CHUNK_ROWS", "5000")
    monkeypatch.setenv("MOODBOARD_WORKSPACE", "/tmp/elsewhere")
    s = load_settings()
    assert s.ingest.chunk_rows == 5000 and s.workspace == Path("/tmp/elsewhere")
    assert load_settings(workspace=Path("/x")).workspace == Path("/x")
    monkeypatch.setenv("MOODBOARD_INGEST__CHUNK_ROWS", "3")
    with pytest.raises(ValidationError, match="chunk_rows"):
        load_settings()


def test_unknown_keys_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "moodboard.toml"
    bad.write_text("[ingest]\nchunk_rowz = 10\n")
    monkeypatch.setenv("MOODBOARD_CONFIG", str(bad))
    with pytest.raises(ValidationError, match="chunk_rowz"):
        load_settings()


def test_overrides_by_dotted_key_set_settings_and_name_what_is_wrong() -> None:
    from moodboard.config.overrides import apply_overrides, parse_overrides
    from moodboard.errors import ConfigError

    text = (
        'surfaces.feed.ranker=rank/shuffle; surfaces.feed.sources=["two_tower", "sequence"],'
        'surfaces.feed.explore_share_known=0.2;surfaces.search.fuse.method="rrf"'
    )
    overrides = parse_overrides(text)
    assert overrides == {
        "surfaces.feed.ranker": "rank/shuffle",  # a bare string
        "surfaces.feed.sources": ["two_tower", "sequence"],  # the comma inside stays
        "surfaces.feed.explore_share_known": 0.2,
        "surfaces.search.fuse.method": "rrf",
    }
    base = Settings()
    s = apply_overrides(base, overrides)
    assert s.surfaces.feed.ranker == "rank/shuffle"
    assert s.surfaces.feed.sources == ("two_tower", "sequence")
    assert s.surfaces.feed.explore_share_known == 0.2
    assert base.surfaces.feed.ranker == "rank/noop"  # the original is untouched
    assert apply_overrides(base, parse_overrides("")) == base
    with pytest.raises(ConfigError, match=r"surfaces\.feed\.rnker"):
        apply_overrides(base, parse_overrides("surfaces.feed.rnker=rank/noop"))
    with pytest.raises(ConfigError, match="explore_share"):
        apply_overrides(base, parse_overrides("surfaces.feed.explore_share=3"))
    with pytest.raises(ConfigError, match=r"'serve\.port\.x'"):
        apply_overrides(base, parse_overrides("serve.port.x=1"))
    for bad in ("surfaces.feed.ranker", "=1", "a..b=1", "a=1;a=2"):
        with pytest.raises(ConfigError):
            parse_overrides(bad)
