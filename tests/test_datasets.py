"""The public-dataset loaders, against the real files under ``$MOODBOARD_DATASETS``.

Counts asserted here are the datasets' README counts (or, for the online-retail catalog and
events, the counts documented in ``OnlineRetail.to_catalog_data``). Tests that need the data
take the ``datasets_root`` fixture of ``conftest.py``: skipped when ``MOODBOARD_DATASETS`` is
unset, failed instead when ``CI`` is set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moodboard.data import columns as C
from moodboard.datasets import (
    DATASETS,
    CatalogData,
    OnlineRetail,
    SeqRecData,
    dataset_root,
    ingest_dataset,
    load_amazon,
    load_fashion,
    load_home_depot,
    load_online_retail,
    load_open_bandit,
    load_wands_queries,
)
from moodboard.datasets.fashion import STYLES_COLUMNS, read_styles
from moodboard.datasets.online_retail import SERVICE_CODES
from moodboard.errors import DatasetNotFoundError
from moodboard.ingest import Workspace

ENV = "MOODBOARD_DATASETS"


@pytest.fixture(scope="module")
def fashion(datasets_root: Path) -> CatalogData:
    return load_fashion()


@pytest.fixture(scope="module")
def retail(datasets_root: Path) -> OnlineRetail:
    return load_online_retail()


@pytest.fixture(scope="module")
def retail_catalog(retail: OnlineRetail) -> CatalogData:
    return retail.to_catalog_data()


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """MOODBOARD_DATASETS and the download cache both point into an empty tmp folder."""
    monkeypatch.setenv(ENV, str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("MOODBOARD_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "data").mkdir()
    return tmp_path


# -- locating datasets ----------------------------------------------------------------------
def test_missing_folder_raises_naming_the_variable_and_folder(isolated: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        load_amazon("beauty")
    msg = str(err.value)
    assert "MOODBOARD_DATASETS" in msg
    assert "amazon-seqrec/" in msg
    assert str(isolated / "data" / "amazon-seqrec") in msg
    assert isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize(
    "load",
    [load_fashion, load_online_retail, load_open_bandit, load_home_depot, load_wands_queries],
)
def test_every_loader_raises_when_its_folder_is_missing(isolated: Path, load) -> None:
    with pytest.raises(DatasetNotFoundError, match=ENV):
        load()


def test_unset_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="MOODBOARD_DATASETS is not set"):
        dataset_root("wands-queries")


def test_incomplete_folder_names_the_missing_file(isolated: Path) -> None:
    (isolated / "data" / "amazon-seqrec").mkdir()
    (isolated / "data" / "amazon-seqrec" / "Beauty.txt").write_text("1 1 2\n")
    with pytest.raises(DatasetNotFoundError, match=r"Beauty_item2attributes\.json"):
        load_amazon("beauty")


def test_download_goes_to_the_cache_and_only_when_asked(isolated: Path) -> None:
    calls: list[Path] = []

    def fake_download(dest: Path) -> None:
        calls.append(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "query.csv").write_text("query_id\tquery\tquery_class\n0\tsofa\tSofas\n")

    with pytest.raises(DatasetNotFoundError):
        dataset_root("wands-queries")
    got = dataset_root("wands-queries", download=fake_download)
    assert got == isolated / "cache" / "moodboard" / "datasets" / "wands-queries"
    assert calls == [got]
    # the cache is then found without downloading again
    assert dataset_root("wands-queries") == got
    assert load_wands_queries()["query"].tolist() == ["sofa"]
    assert len(calls) == 1


def test_offline_forbids_download(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def must_not_run(dest: Path) -> None:
        raise AssertionError("downloaded while offline")

    with pytest.raises(DatasetNotFoundError, match="Not downloading"):
        dataset_root("amazon-seqrec", download=must_not_run)


def test_root_argument_overrides_the_variable(isolated: Path) -> None:
    other = isolated / "other"
    (other / "wands-queries").mkdir(parents=True)
    (other / "wands-queries" / "query.csv").write_text("query_id\tquery\tquery_class\n7\tNA\t\n")
    df = load_wands_queries(root=other)
    assert df["query_id"].tolist() == [7]
    assert df["query"].tolist() == ["NA"]  # a query is text, never parsed as a missing value
    assert df["query_class"].isna().all()


def test_datasets_names_every_folder(datasets_root: Path) -> None:
    for name, folder in DATASETS.items():
        assert (datasets_root / folder).is_dir(), name


# -- argument validation ----------------------------------------------------------------------
def test_unknown_amazon_name_message() -> None:
    with pytest.raises(ValueError) as err:
        load_amazon("x")
    assert str(err.value) == (
        "The 'name' parameter of load_amazon must be one of 'beauty', 'sports', 'toys'. "
        "Got 'x' instead."
    )


def test_unknown_bandit_policy_and_campaign_messages() -> None:
    with pytest.raises(ValueError, match=r"'policy' parameter of load_open_bandit .* Got 'ucb'"):
        load_open_bandit(policy="ucb")
    with pytest.raises(
        ValueError,
        match=r"'campaign' .* must be one of 'all', 'men', 'women'\. Got 'kids' instead\.",
    ):
        load_open_bandit(campaign="kids")


def test_unknown_ingest_name_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        ingest_dataset(Workspace(tmp_path / "ws"), "beauty")
    assert str(err.value) == (
        "The 'name' parameter of ingest_dataset must be one of 'fashion', 'online-retail'. "
        "Got 'beauty' instead."
    )
    assert not (tmp_path / "ws").exists()


# -- fashion ------------------------------------------------------------------------------
def test_ragged_styles_rows_are_repaired(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(
        ",".join(STYLES_COLUMNS)
        + "\n1,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Peter England, Men Blue Shirt\n"
        + "2,Women,Apparel,Topwear,Tops,,Summer,2012,,Plain Top\n"
        + "3,Women,Footwear,Shoes,Heels\n"
    )
    rows = read_styles(path)
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["productDisplayName"] == "Peter England, Men Blue Shirt"
    assert rows[1]["baseColour"] is None and rows[1]["usage"] is None
    assert rows[2]["articleType"] == "Heels" and rows[2]["productDisplayName"] is None


def test_fashion_catalog(fashion: CatalogData) -> None:
    p = fashion.products
    assert len(fashion) == 9_583 and fashion.events is None
    assert p.column_names[: len(C.CATALOG_COLUMNS)] == list(C.CATALOG_COLUMNS)
    assert len(p.column(C.ID).unique()) == 9_583
    assert all(t and t == t.strip() for t in p.column(C.TITLE).to_pylist())
    images = p.column(C.IMAGE).to_pylist()
    assert all(i is not None and Path(i).is_absolute() and Path(i).is_file() for i in images)
    for col in (C.PRICE, C.BRAND, C.DESCRIPTION, C.CURRENCY, C.CREATED_AT):
        assert p.column(col).null_count == 9_583, col
    assert len(p.column("articleType").unique()) == 75
    assert p.column("baseColour").null_count == 3
    assert p.column("usage").null_count == 8


def test_fashion_products_are_records(fashion: CatalogData) -> None:
    products = list(fashion.iter_products())
    assert len(products) == 9_583
    assert all("articleType" in p.attributes for p in products)
    assert sum("baseColour" in p.attributes for p in products) == 9_580
    first = products[0]
    assert first.id == "15970"
    assert first.category == "Apparel/Topwear/Shirts"
    assert first.attributes["baseColour"] == "Navy Blue"
    assert first.price is None


def test_ingest_fashion(fashion: CatalogData, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    reports = ingest_dataset(ws, "fashion")
    assert set(reports) == {"catalog"}
    assert (reports["catalog"].read, reports["catalog"].stored) == (9_583, 9_583)
    assert reports["catalog"].quarantined == 0
    assert ws.status()["products"] == 9_583
    stored = ws.products(["15970"])[0]
    assert stored.attributes["articleType"] == "Shirts"
    assert stored.image and Path(stored.image).is_file()


# -- online retail ---------------------------------------------------------------------------
def test_online_retail_lines(retail: OnlineRetail) -> None:
    lines = retail.lines
    assert len(lines) == 541_909
    assert lines["StockCode"].nunique() == 4_070
    assert lines["CustomerID"].nunique() == 4_372
    assert lines["InvoiceNo"].str.startswith("C").sum() == 9_288


def test_online_retail_catalog(retail_catalog: CatalogData) -> None:
    products = retail_catalog.products.to_pandas()
    assert len(retail_catalog) == 3_938
    assert products[C.ID].is_unique
    assert (
        products[C.TITLE].notna().all()
        and (products[C.TITLE] == products[C.TITLE].str.strip()).all()
    )
    assert (products[C.CURRENCY] == "GBP").all()
    prices = products[C.PRICE].astype(float)
    assert (prices > 0).all()
    row = products.set_index(C.ID).loc["85123A"]
    assert row[C.TITLE] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert row[C.PRICE] == "2.95"
    # stock-keeping notes never become titles
    assert not products[C.TITLE].str.fullmatch(r"[^A-Z]*").any()
    assert set(SERVICE_CODES) <= set(products[C.ID])


def test_online_retail_events(retail: OnlineRetail, retail_catalog: CatalogData) -> None:
    events = retail_catalog.events
    assert events is not None
    ev = events.to_pandas()
    assert len(ev) == 397_924
    assert ev[C.EVENT_ID].is_unique
    assert ev[C.ITEM_ID].isin(set(retail_catalog.products.column(C.ID).to_pylist())).all()
    assert (ev[C.TYPE] == "purchase").all()
    assert ev[C.USER_ID].nunique() == 4_339
    assert ev[C.USER_ID].str.fullmatch(r"\d+").all()
    assert ev[C.ITEM_ID].nunique() == 3_665
    assert (ev["quantity"].astype(int) > 0).all()
    first = ev.iloc[0]
    assert (first[C.EVENT_ID], first[C.TS], first[C.USER_ID]) == (
        "536365-0",
        "2010-12-01T08:26:00",
        "17850",
    )
    assert list(ev.columns[: len(C.EVENT_COLUMNS)]) == list(C.EVENT_COLUMNS)
    assert list(ev.columns[len(C.EVENT_COLUMNS) :]) == ["quantity", "unit_price", "country"]
    # no cancellation nor anonymous line became an event
    idx = ev[C.EVENT_ID].str.rsplit("-", n=1).str[1].astype(int).to_numpy()
    src = retail.lines.iloc[idx]
    assert not src["InvoiceNo"].str.startswith("C").any()
    assert src["CustomerID"].notna().all()


def test_ingest_online_retail(retail_catalog: CatalogData, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    reports = ingest_dataset(ws, "online-retail")
    cat, ev = reports["catalog"], reports["events"]
    assert (cat.read, cat.stored, cat.quarantined) == (3_938, 3_938, 0)
    assert (ev.read, ev.stored, ev.quarantined) == (397_924, 397_924, 0)
    status = ws.status()
    assert status["products"] == 3_938
    assert status["events"] == {"purchase": 397_924}
    assert status["users"] == 4_339


# -- amazon -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "users", "items", "interactions"),
    [
        ("beauty", 22_363, 12_101, 198_502),
        ("sports", 35_598, 18_357, 296_337),
        ("toys", 19_412, 11_924, 167_597),
    ],
)
def test_amazon_counts(
    datasets_root: Path, name: str, users: int, items: int, interactions: int
) -> None:
    data = load_amazon(name)
    assert isinstance(data, SeqRecData)
    assert data.n_users == users and len(data.user_ids) == users
    assert data.n_interactions == interactions
    distinct = np.unique(np.concatenate(data.sequences))
    assert len(distinct) == items
    assert distinct[0] == 1 and data.n_items == items + 1  # 1-based, dense ids
    assert data.user_ids.dtype == np.int64
    assert all(s.dtype == np.int32 for s in data.sequences)
    assert min(len(s) for s in data.sequences) >= 5  # 5-core
    assert set(data.item_attributes) == set(distinct.tolist())


def test_amazon_keeps_file_order(datasets_root: Path) -> None:
    data = load_amazon("beauty")
    first = (datasets_root / "amazon-seqrec" / "Beauty.txt").read_text().split("\n", 1)[0]
    user, *items = (int(x) for x in first.split())
    assert data.user_ids[0] == user
    assert data.sequences[0].tolist() == items
    assert data.item_attributes[4] == [1, 2, 3]


# -- open bandit, home depot, wands -------------------------------------------------------
@pytest.mark.parametrize("policy", ["random", "bts"])
@pytest.mark.parametrize(("campaign", "n_actions"), [("all", 80), ("men", 34), ("women", 46)])
def test_open_bandit(datasets_root: Path, policy: str, campaign: str, n_actions: int) -> None:
    data = load_open_bandit(policy, campaign)
    log = data.log
    assert len(log) == 10_000
    assert not any(str(c).startswith("Unnamed") for c in log.columns)
    assert log.columns[0] == "timestamp"
    assert data.n_actions == n_actions == len(data.item_context)
    assert data.len_list == 3 and set(log["position"]) == {1, 2, 3}
    assert log["item_id"].between(0, n_actions - 1).all()
    assert log["propensity_score"].between(0, 1, inclusive="right").all()
    assert log["timestamp"].is_monotonic_increasing
    if policy == "random":
        assert np.allclose(log["propensity_score"], 1 / n_actions)


def test_home_depot(datasets_root: Path) -> None:
    df = load_home_depot()
    assert list(df.columns) == ["id", "product_uid", "product_title", "search_term", "relevance"]
    assert len(df) == 59_206
    assert df["search_term"].nunique() == 9_436
    assert df["id"].is_unique
    assert df["relevance"].dtype == np.float64
    assert df["relevance"].between(1, 3).all()
    assert df.notna().all().all()


def test_wands_queries(datasets_root: Path) -> None:
    df = load_wands_queries()
    assert list(df.columns) == ["query_id", "query", "query_class"]
    assert len(df) == 480
    assert df["query_id"].is_unique
    assert df["query"].notna().all()
    assert pd.api.types.is_integer_dtype(df["query_id"])
