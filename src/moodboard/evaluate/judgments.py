"""Graded relevance judgments in the Home Depot layout, and the query understanding of a judged
catalog: reading, the query-level split, the gains, and what the search chain's ``understand``
resource is during an evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from moodboard.data import Product
from moodboard.errors import InputError
from moodboard.understand.parsed import ParsedQuery
from moodboard.understand.query import QueryUnderstanding, QueryUnderstandingConfig

_log = logging.getLogger(__name__)

COLUMNS = ("id", "product_uid", "product_title", "search_term", "relevance")
#: Query text -> the query understood (the search chain's ``understand`` resource).
Understand = Callable[[str], ParsedQuery]


def read_judgments(path: Path) -> pd.DataFrame:
    """A judgment file in the Home Depot layout (UTF-8 or latin-1).

    Raises
    ------
    InputError
        If the file is missing or lacks a column.
    """
    if not Path(path).is_file():
        raise InputError(f"{path} does not exist: give a CSV with columns {', '.join(COLUMNS)}.")
    try:
        df = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError:
        df = pd.read_csv(path, encoding="latin-1")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path} lacks the column(s) {missing}; the layout is {COLUMNS}.")
    return df


def split_queries(
    df: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A query-level split: every judgment of a query lands on the same side."""
    queries = np.array(sorted(df["search_term"].astype(str).unique()))
    rng = np.random.default_rng(seed)
    test = set(rng.choice(queries, size=round(len(queries) * test_fraction), replace=False))
    is_test = df["search_term"].astype(str).isin(test)
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def sample_queries(df: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """The judgments of a random ``fraction`` of the queries (a query keeps all its rows).

    Raises
    ------
    InputError
        If ``fraction`` is not in (0, 1].
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"The query sample must be a fraction in (0, 1]. Got {fraction}.")
    if fraction == 1.0:
        return df
    queries = np.array(sorted(df["search_term"].astype(str).unique()))
    rng = np.random.default_rng(seed)
    keep = set(rng.choice(queries, size=max(1, round(len(queries) * fraction)), replace=False))
    return df[df["search_term"].astype(str).isin(keep)].reset_index(drop=True)


def qrels_of(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Query -> {product id: gain}, gain = relevance - 1 (the mean over duplicate rows)."""
    g = df.assign(gain=df["relevance"].astype(float) - 1.0, pid=df["product_uid"].astype(str))
    g = g.groupby(["search_term", "pid"], sort=False)["gain"].mean().reset_index()
    out: dict[str, dict[str, float]] = {}
    for q, pid, gain in g.itertuples(index=False):
        out.setdefault(str(q), {})[pid] = float(gain)
    return out


def judged_catalog_understanding(*frames: pd.DataFrame) -> Understand:
    """Query understanding fitted on the judged products' titles (spelling from their words).

    Bare number ranges ("10-32") stay model numbers, not prices, in a hardware catalog.
    """
    prods = pd.concat(frames).drop_duplicates("product_uid")
    qu = QueryUnderstanding(QueryUnderstandingConfig(bare_price_ranges=False)).fit(
        [
            Product(id=str(u), title=str(t))
            for u, t in zip(prods["product_uid"], prods["product_title"], strict=True)
        ]
    )
    return qu


def verbatim(text: str) -> ParsedQuery:
    """The query as typed, searched unchanged (no spelling, price or attribute reading)."""
    return ParsedQuery(
        raw=text, normalized=text, tokens=tuple(text.split()), corrected=text, text=text
    )
