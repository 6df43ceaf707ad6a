"""The 480 queries of Wayfair's WANDS product-search dataset."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from moodboard.datasets._paths import dataset_root, github_download, require_files

_log = logging.getLogger(__name__)

FOLDER = "wands-queries"
FILE = "query.csv"
COLUMNS = ("query_id", "query", "query_class")


def load_wands_queries(root: Path | str | None = None, download: bool = False) -> pd.DataFrame:
    """WANDS queries: query_id, query text and query_class (the product class searched for).

    Parameters
    ----------
    root
        The folder holding ``wands-queries/``; default ``$MOODBOARD_DATASETS``.
    download
        If the file is not found, fetch ``dataset/query.csv`` from GitHub wayfair/WANDS into
        ``$XDG_CACHE_HOME/moodboard/datasets/wands-queries``. Off by default.

    Returns
    -------
    pandas.DataFrame
        480 rows; ``query_class`` is missing (NaN) for 6 of them.

    Raises
    ------
    DatasetNotFoundError
        If the file is missing and not downloaded.
    ValueError
        If the file lacks one of the columns.
    """
    fetcher = github_download(FOLDER, {FILE: FILE})
    folder = dataset_root(FOLDER, root=root, download=fetcher if download else None)
    require_files(folder, [FILE])
    df = pd.read_csv(
        folder / FILE,
        sep="\t",
        dtype={"query_id": "int64", "query": "str", "query_class": "str"},
        keep_default_na=False,
        na_values=[""],
    )
    absent = [c for c in COLUMNS if c not in df.columns]
    if absent:
        raise ValueError(
            f"{folder / FILE} must be tab-separated with the columns {', '.join(COLUMNS)}. "
            f"Got {list(df.columns)} instead."
        )
    _log.info("wands: %d queries from %s", len(df), folder)
    return df[list(COLUMNS)]
