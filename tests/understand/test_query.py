"""Query understanding on real queries and real catalogs: prices, attributes, spelling, intent.

Quality floors sit a little under what was measured (seeded samples, see each test).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from moodboard.data import Product
from moodboard.datasets import load_fashion, load_home_depot, load_wands_queries
from moodboard.errors import NotFittedError
from moodboard.understand.normalize import normalize_text
from moodboard.understand.query import (
    ParsedQuery,
    QueryUnderstanding,
    QueryUnderstandingConfig,
    parse_query,
)
from moodboard.understand.spelling import english_counts

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fashion(datasets_root: Path) -> tuple[list[Product], list[Product]]:
    """The fashion catalog, shuffled (seed 0) and split 80% train / 20% held out."""
    products = list(load_fashion(datasets_root).iter_products())
    random.Random(0).shuffle(products)
    cut = int(len(products) * 0.8)
    return products[:cut], products[cut:]


@pytest.fixture(scope="module")
def fashion_model(fashion: tuple[list[Product], list[Product]]) -> QueryUnderstanding:
    return QueryUnderstanding().fit(fashion[0])


@pytest.fixture(scope="module")
def home_depot(datasets_root: Path) -> pd.DataFrame:
    return load_home_depot(datasets_root)


@pytest.fixture(scope="module")
def hd_model(home_depot: pd.DataFrame) -> QueryUnderstanding:
    """Fitted on the Home Depot product titles only (no queries)."""
    rows = home_depot.drop_duplicates("product_uid")
    products = [
        Product(id=str(uid), title=title)
        for uid, title in zip(rows.product_uid, rows.product_title, strict=True)
    ]
    return QueryUnderstanding(QueryUnderstandingConfig(intent=False)).fit(products)


@pytest.fixture(scope="module")
def hd_queries(home_depot: pd.DataFrame) -> list[str]:
    return sorted(set(home_depot.search_term))


# ---------------------------------------------------------------- without a catalog


def test_builtin_parse_reads_colour_gender_and_price() -> None:
    q = parse_query("mens navy shirt under 40")
    assert isinstance(q, ParsedQuery)
    assert q.colours == ("navy blue",)
    assert q.genders == ("men",)
    assert (q.price_min, q.price_max) == (None, 40.0)
    assert q.text == "mens navy shirt"
    assert q.article_types == () and q.intent == () and q.corrections == {}
    assert q.filters() == {"price_max": 40.0}
    assert q.boosts() == {"colours": ("navy blue",), "genders": ("men",)}


def test_normalization_keeps_codes_and_strips_punctuation() -> None:
    q = parse_query("Men's  NAVY-Blue T-Shirt, 1/2 inch (r-13) 2x4 3.5!")
    assert q.normalized == "mens navy blue t shirt 1/2 inch r-13 2x4 3.5"
    assert q.tokens == tuple(q.normalized.split())
    assert parse_query("Ｍｅｎ’s  ＳＨＩＲＴ").normalized == "mens shirt"  # NFKC


@pytest.mark.parametrize("query", ["", "   ", "!!!", "$$$", "under", "- 20 -", "\u200b"])
def test_degenerate_queries_parse(query: str) -> None:
    q = parse_query(query)
    assert q.tokens == tuple(q.normalized.split())
    assert q.colours == q.genders == q.intent == ()


@pytest.mark.parametrize(
    ("query", "low", "high", "text"),
    [
        ("red dress under 50", None, 50, "red dress"),
        ("shoes below $50", None, 50, "shoes"),
        ("less than 50 bags", None, 50, "bags"),
        ("tops < 50", None, 50, "tops"),
        ("watch over 30", 30, None, "watch"),
        ("above 30 jackets", 30, None, "jackets"),
        ("more than 30", 30, None, ""),
        ("women black heels between 20 and 40", 20, 40, "women black heels"),
        ("kurta 20-40", 20, 40, "kurta"),
        ("jeans from 20 to 40", 20, 40, "jeans"),
        ("belt $20 to $40", 20, 40, "belt"),
        ("sandals 50 dollars", None, 50, "sandals"),
        ("kurti under 50 rs", None, 50, "kurti"),
        ("saree for under 1,500", None, 1500, "saree"),
        ("heels 40 and under", None, 40, "heels"),
        ("bags $30+", 30, None, "bags"),
    ],
)
def test_price_phrases(query: str, low: float | None, high: float | None, text: str) -> None:
    q = parse_query(query)
    assert (q.price_min, q.price_max) == (low, high)
    assert q.text == text


@pytest.mark.parametrize(
    "query", ["2x4 8 ft", "r-13 insulation", "1/2 in pvc", "under 5 lbs", "over 30 inch tv",
              "1-1/2 pipe", "5000k led", "40 gal water heater", "between 2 and 4 inch"],
)  # fmt: skip
def test_measurements_and_codes_are_not_prices(query: str) -> None:
    q = parse_query(query)
    assert (q.price_min, q.price_max) == (None, None)
    assert q.text == q.normalized


# ---------------------------------------------------------------- attributes on fashion


@pytest.mark.parametrize(
    ("query", "colours", "genders", "articles", "high"),
    [
        ("navy blue shirt for men", ("navy blue",), ("men",), ("Shirts",), None),
        ("mens navy shirt under 40", ("navy blue",), ("men",), ("Shirts",), 40),
        ("red dress under 50", ("red",), (), ("Dresses",), 50),
        ("women black heels between 20 and 40", ("black",), ("women",), ("Heels",), 40),
        ("Ladies white T-Shirt", ("white",), ("women",), ("Tshirts",), None),
        ("boys grey tshirts", ("grey",), ("boys",), ("Tshirts",), None),
    ],
)
def test_fashion_queries(
    fashion_model: QueryUnderstanding,
    query: str,
    colours: tuple[str, ...],
    genders: tuple[str, ...],
    articles: tuple[str, ...],
    high: float | None,
) -> None:
    q = fashion_model(query)
    assert (q.colours, q.genders, q.article_types, q.price_max) == (
        colours,
        genders,
        articles,
        high,
    )
    assert q.boosts()["article_types"] == articles
    assert all(c.endswith("/" + articles[0]) for c in q.categories)


def test_misspelt_fashion_queries(fashion_model: QueryUnderstanding) -> None:
    q = fashion_model("womens blak heals under 40")
    assert q.corrections == {"blak": "black", "heals": "heels"}
    assert q.corrected == "womens black heels under 40" and q.text == "womens black heels"
    assert (q.colours, q.genders, q.article_types) == (("black",), ("women",), ("Heels",))
    assert q.intent[0][0] == "Footwear/Shoes/Heels"
    assert fashion_model("puma tshrt").article_types == ("Tshirts",)
    assert fashion_model("addidas sports shoes").corrections == {"addidas": "adidas"}


def test_attributes_agree_with_held_out_titles(
    fashion: tuple[list[Product], list[Product]], fashion_model: QueryUnderstanding
) -> None:
    """Article type, colour and gender read from 500 held-out titles match the catalog's own."""
    sample = random.Random(1).sample(fashion[1], 500)
    article = gender = colour = colour_named = 0
    for p in sample:
        q = fashion_model(p.title)
        article += p.attributes["articleType"] in q.article_types
        gender += p.attributes["gender"].lower() in q.genders
        base = normalize_text(p.attributes.get("baseColour", ""))
        if base and base in q.normalized:
            colour_named += 1
            colour += base in q.colours
    # measured: article type 0.970, gender 0.972, colour 0.991 of the 468 titles naming it
    assert article / 500 >= 0.94
    assert gender / 500 >= 0.94
    assert colour_named >= 400
    assert colour / colour_named >= 0.97


# ---------------------------------------------------------------- spelling on Home Depot


def _corrupt(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    op = rng.choice("dist")
    letters = string.ascii_lowercase
    if op == "d":
        return word[:i] + word[i + 1 :]
    if op == "i":
        return word[:i] + rng.choice(letters) + word[i:]
    if op == "s":
        return word[:i] + rng.choice([c for c in letters if c != word[i]]) + word[i + 1 :]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def test_spelling_restores_corrupted_query_words(
    hd_model: QueryUnderstanding, hd_queries: list[str]
) -> None:
    """One random edit on a catalog word of >= 5 letters in 200 real queries, mostly undone."""
    vocabulary = hd_model.vocabulary
    rng = random.Random(0)
    restored = cases = 0
    for query in rng.sample(hd_queries, len(hd_queries)):
        tokens = normalize_text(query).split()
        spots = [i for i, w in enumerate(tokens) if len(w) >= 5 and w.isalpha() and w in vocabulary]
        if not spots:
            continue
        i = rng.choice(spots)
        wrong = _corrupt(tokens[i], rng)
        if wrong == tokens[i]:
            continue
        q = hd_model(" ".join([*tokens[:i], wrong, *tokens[i + 1 :]]))
        restored += q.corrections.get(wrong) == tokens[i]
        cases += 1
        if cases == 200:
            break
    # measured: 0.900 (0.86 without the word-pair context, 0.79 when any word may be picked,
    # as 28 of 200 query words are themselves misspelt: "insallation", "aluminun")
    assert cases == 200
    assert restored / cases >= 0.86


def test_spelling_leaves_correct_queries_alone(
    hd_model: QueryUnderstanding, hd_queries: list[str]
) -> None:
    """200 real queries whose words are all English or catalog words come back unchanged.

    Some of those are misspelt all the same ("sower head", "ceder fence"); fixing them counts
    as a change here.
    """
    english = english_counts()
    vocabulary = hd_model.vocabulary
    correct = [
        q
        for q in hd_queries
        if all(
            not w.isalpha() or w in english or w in vocabulary for w in normalize_text(q).split()
        )
    ]
    sample = random.Random(2).sample(correct, 200)
    unchanged = sum(hd_model(q).corrected == normalize_text(q) for q in sample)
    # measured: 0.990 (0.945 without the English background dictionary)
    assert unchanged / 200 >= 0.97


def test_numbers_and_model_codes_are_never_corrected(
    hd_model: QueryUnderstanding, hd_queries: list[str]
) -> None:
    q = hd_model("2x4 r-13 1/2 insulaton")
    assert q.corrections == {"insulaton": "insulation"}
    assert q.corrected == "2x4 r-13 1/2 insulation"
    coded = [q for q in hd_queries if any(c.isdigit() for c in q)]
    for query in random.Random(3).sample(coded, 300):
        fixed = hd_model(query).corrections
        assert not any(any(c.isdigit() for c in w) for w in fixed), (query, fixed)


def test_query_logs_join_the_vocabulary() -> None:
    products = [Product(id="1", title="Cordless drill kit"), Product(id="2", title="Drill bits")]
    cfg = QueryUnderstandingConfig(intent=False, spell_background=False)
    assert QueryUnderstanding(cfg).fit(products)("drilk").corrections == {"drilk": "drill"}
    assert QueryUnderstanding(cfg).fit(products)("makita drill").corrected == "makita drill"
    fitted = QueryUnderstanding(cfg).fit(products, queries=["makita drill"])
    assert fitted("makitta drill").corrections == {"makitta": "makita"}


# ---------------------------------------------------------------- intent


def test_intent_of_queries_from_held_out_titles(
    fashion: tuple[list[Product], list[Product]], fashion_model: QueryUnderstanding
) -> None:
    """The last three words of 500 held-out titles, e.g. "navy blue shirt", as queries."""
    sample = random.Random(4).sample(fashion[1], 500)
    hits = []
    confidence = []
    for p in sample:
        q = fashion_model(" ".join(p.title.split()[-3:]))
        assert q.intent, p.title
        probs = [prob for _, prob in q.intent]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        hits.append(q.intent[0][0] == p.category)
        confidence.append(probs[0])
    accuracy = float(np.mean(hits))
    # measured: 0.964 top-1, mean top probability 0.972 (calibrated: close to the accuracy)
    assert accuracy >= 0.93
    assert abs(float(np.mean(confidence)) - accuracy) <= 0.05


def test_engagement_pairs_teach_intent(fashion: tuple[list[Product], list[Product]]) -> None:
    products = fashion[0][:1500]
    kurtas = next(p.category for p in products if p.attributes["articleType"] == "Kurtas")
    cfg = QueryUnderstandingConfig(spelling=False)
    model = QueryUnderstanding(cfg).fit(products, intents=[("festive wear", kurtas)] * 5)
    assert model("festive wear").intent[0][0] == kurtas


def test_wands_queries_parse(datasets_root: Path, fashion_model: QueryUnderstanding) -> None:
    queries = load_wands_queries(datasets_root)["query"].tolist()
    assert len(queries) == 480
    for text in queries:
        for q in (fashion_model(text), parse_query(text)):
            assert isinstance(q, ParsedQuery)
            assert q.raw == text and q.tokens == tuple(q.normalized.split())
        if "black" in normalize_text(text).split():
            assert "black" in parse_query(text).colours


# ---------------------------------------------------------------- component contract


def test_save_and_load_give_identical_parses(
    tmp_path: Path,
    fashion: tuple[list[Product], list[Product]],
    fashion_model: QueryUnderstanding,
) -> None:
    fashion_model.save(tmp_path / "qu")
    files = list((tmp_path / "qu").iterdir())
    assert {f.suffix for f in files} <= {".json", ".npy"}
    for f in files:
        if f.suffix == ".npy":
            np.load(f, allow_pickle=False)
    loaded = QueryUnderstanding.load(tmp_path / "qu")
    assert loaded.config == fashion_model.config
    queries = [p.title for p in fashion[1][:150]]
    queries += ["navy blu shrt for men under 40", "womens blak heals 20-40", "kids tshirts"]
    for text in queries:
        assert loaded(text) == fashion_model(text)


def test_unfitted_component_raises() -> None:
    model = QueryUnderstanding()
    assert not model.is_fitted
    with pytest.raises(NotFittedError, match="QueryUnderstanding isn't fitted, call fit first"):
        model("navy blue shirt")
    with pytest.raises(NotFittedError):
        parse_query("navy blue shirt", model)
    with pytest.raises(NotFittedError):
        model.save(Path("unused"))
    with pytest.raises(NotFittedError):
        _ = model.vocabulary
    with pytest.raises(ValueError, match="'products' parameter"):
        model.fit([])


def test_config_rejects_unknown_keys_and_round_trips() -> None:
    with pytest.raises(ValidationError):
        QueryUnderstandingConfig(spell_distance=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        QueryUnderstandingConfig(intent_top_k=0)
    cfg = QueryUnderstandingConfig(intent_top_k=5, spelling=False)
    assert QueryUnderstandingConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_one_query_fast_path_equals_the_batch_probabilities(
    fashion_model: QueryUnderstanding,
) -> None:
    clf = fashion_model._check_fitted().classifier
    for q in ("red dress", "blue jeans for men", "zzqx", "kurta women yellow", "Watch!!"):
        assert np.allclose(clf._proba_one(q), clf.predict_proba([q])[0], atol=1e-5), q
