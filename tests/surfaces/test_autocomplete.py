"""Autocomplete on hand-made logs and catalogs: prefixes, typos, blocked terms, interests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodboard.config import AutocompleteConfig
from moodboard.errors import InputError, NotFittedError
from moodboard.surfaces.autocomplete import Autocomplete, is_hit, normalize_prefix
from moodboard.surfaces.autocomplete_candidates import CatalogText, QueryLog
from moodboard.surfaces.autocomplete_index import PrefixIndex, one_edit_variants

COLOURS = ("blue", "red", "green", "black", "white", "grey", "pink", "navy", "brown", "beige")


def _log(rows: list[tuple[str, str | None, str | None]], engaged: float = 1.0) -> QueryLog:
    return QueryLog(
        [q for q, _, _ in rows],
        np.ones(len(rows)),
        np.full(len(rows), engaged),
        [u for _, u, _ in rows],
        [c for _, _, c in rows],
    )


@pytest.fixture(scope="module")
def taste() -> tuple[Autocomplete, CatalogText]:
    """Shirt lovers search shirts, shoe lovers shoes, equally often: only the shopper's
    interests tell which a prefix "sh" means."""
    rows = []
    for u in range(40):
        kind, cat = ("shirt", "Shirts") if u % 2 else ("shoes", "Shoes")
        for c in COLOURS:
            rows += [(f"{kind} {c} {u % 5}", f"u{u}", cat)] * 2
    titles = [f"{k} {c} {m}" for k in ("shirt", "shoes") for c in COLOURS for m in ("a", "b")]
    cats = ["Shirts" if t.startswith("shirt") else "Shoes" for t in titles]
    catalog = CatalogText(titles, cats, ("navy blue shirts",))
    interests = {f"u{u}": {("Shirts" if u % 2 else "Shoes"): 1.0} for u in range(40)}
    ac = Autocomplete(AutocompleteConfig(blocked_terms=("grey",))).fit(
        _log(rows), catalog, interests
    )
    return ac, catalog


def test_completions_start_with_the_prefix_and_learn_heads_of_queries() -> None:
    log = _log([("angle bracket 90", None, None)] * 3 + [("angle bracket 4 in", None, None)] * 2)
    log2 = _log([("angle iron", None, None)])
    merged = QueryLog(
        [*log.queries, *log2.queries],
        np.ones(6),
        np.ones(6),
    )
    ac = Autocomplete().fit(merged, CatalogText(["Simpson Angle Bracket", "Steel Angle Iron"]))
    got = [c.text for c in ac.complete("an", k=8)]
    assert got and all(t.startswith("an") for t in got)
    # the head of both "angle bracket" queries stands for them (one completion per head),
    # above the rarer "angle iron"
    assert got.index("angle bracket") < got.index("angle iron")
    assert "angle bracket 90" not in got and "angle bracket 4 in" not in got
    assert is_hit("angle bracket 4 in", "angle bracket 90")
    assert not is_hit("angle iron", "angle bracket 90")
    assert ac.complete("", 5) == [] and ac.complete("   ", 5) == []
    assert [c.text for c in ac.complete("zzz", 5)] == []


def test_typo_in_the_prefix_still_completes(taste: tuple[Autocomplete, CatalogText]) -> None:
    ac, _ = taste
    got = [c.text for c in ac.complete("shitr", 5)]  # one swap of neighbours
    assert got and got[0].startswith("shirt")
    got = [c.text for c in ac.complete("shoez b", 5)]  # one substitution
    assert got and got[0].startswith("shoes b")
    assert "shirt" in one_edit_variants("shirr")  # substitution
    assert "sirt" not in one_edit_variants("shirt", start=3)


def test_blocked_terms_are_never_returned(
    taste: tuple[Autocomplete, CatalogText], tmp_path: Path
) -> None:
    ac, _ = taste
    for p in ("s", "sh", "shirt g", "shoes gr", "shoes grey"):
        assert all("grey" not in c.text.split() for c in ac.complete(p, 20)), p
    assert any(c.text.startswith("shoes") for c in ac.complete("sho", 20))
    ac.save(tmp_path / "ac")  # the server's config blocks terms without a rebuild
    served = Autocomplete.load(tmp_path / "ac", AutocompleteConfig(blocked_terms=("shoes",)))
    assert served.complete("sho", 20) == []


def test_the_shoppers_interests_change_the_order(taste: tuple[Autocomplete, CatalogText]) -> None:
    ac, _ = taste
    assert ac.info["trained"], ac.info
    shirts = ac.complete("sh", 3, {"Shirts": 1.0})
    shoes = ac.complete("sh", 3, {"Shoes": 1.0})
    assert shirts[0].text.startswith("shirt") and shoes[0].text.startswith("shoes")


def test_saved_and_loaded_it_completes_the_same(
    taste: tuple[Autocomplete, CatalogText], tmp_path: Path
) -> None:
    ac, _ = taste
    ac.save(tmp_path / "ac")
    assert not list((tmp_path / "ac").glob("*.pkl"))
    again = Autocomplete.load(tmp_path / "ac")
    for p in ("s", "sh", "shoes b", "shitr"):
        assert again.complete(p, 8, {"Shoes": 1.0}) == ac.complete(p, 8, {"Shoes": 1.0})
    with pytest.raises(InputError, match="not a readable autocomplete"):
        Autocomplete.load(tmp_path / "missing")


def test_bad_requests_say_what_to_fix(taste: tuple[Autocomplete, CatalogText]) -> None:
    ac, _ = taste
    with pytest.raises(InputError, match=r"The 'k' parameter must be an int in 1\.\.20\. Got 0"):
        ac.complete("sh", 0)
    with pytest.raises(InputError, match="at most 100 characters"):
        ac.complete("s" * 101)
    assert ac.complete("\x00\x1b[31m\t", 5) == []
    assert all(c.text.startswith("sh") for c in ac.complete("\x00sh", 5))
    with pytest.raises(NotFittedError):
        Autocomplete().complete("sh")
    assert normalize_prefix("Angle ") == "angle " and normalize_prefix("Angle") == "angle"


def test_prefix_index_ranges_and_precomputed_tops_agree() -> None:
    texts = ["ab", "abc", "abd", "b", "ba", "bab", "c"]
    prior = np.array([1, 5, 3, 2, 9, 1, 4], dtype=float)
    index = PrefixIndex(texts, prior, precompute_chars=1, top_m=2)
    assert [texts[i] for i in index.top("a", 2)] == ["abc", "abd"]  # precomputed
    assert [texts[i] for i in index.top("ab", 5)] == ["abc", "abd", "ab"]  # computed
    assert index.count("b") == 3 and index.count("x") == 0
    assert index.matched_chars("abx") == 2
    assert [texts[i] for i in index.top_of_variants(["bx", "ab"], 2)] == ["abc", "abd"]
