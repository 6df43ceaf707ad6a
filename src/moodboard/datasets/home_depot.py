"""Home Depot product-search relevance judgments (Kaggle competition train split)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from moodboard.datasets._paths import dataset_root, require_files

_log = logging.getLogger(__name__)

FOLDER = "home-depot-search-relevance"
FILE = "train.csv"
COLUMNS = ("id", "product_uid", "product_title", "search_term", "relevance")
_DTYPES = {
    "id": "int64",
    "product_uid": "int64",
    "product_title": "str",
    "search_term": "str",
    "relevance": "float64",
}


def load_home_depot(root: Path | str | None = None) -> pd.DataFrame:
    """The 59,206 judged (search_term, product) pairs over 9,436 distinct queries.

    ``relevance`` is the mean of three raters on 1 (irrelevant) .. 3 (exact match). The file
    is latin-1; a few titles carry the original competition's mojibake (e.g. ``"30å¡"`` for
    ``"30°"``), kept as they are.

    Parameters
    ----------
    root
        The folder holding ``home-depot-search-relevance/``; default ``$MOODBOARD_DATASETS``.

    Returns
    -------
    pandas.DataFrame
        Columns id, product_uid, product_title, search_term, relevance (float).

    Raises
    ------
    DatasetNotFoundError
        If the folder or ``train.csv`` is missing.
    ValueError
        If the file lacks one of the columns.
    """
    folder = dataset_root(FOLDER, root=root)
    require_files(folder, [FILE])
    df = pd.read_csv(folder / FILE, encoding="latin-1", keep_default_na=False, na_values=[""])
    absent = [c for c in COLUMNS if c not in df.columns]
    if absent:
        raise ValueError(
            f"{folder / FILE} must have the columns {', '.join(COLUMNS)}. "
            f"Got {list(df.columns)} instead."
        )
    df = df[list(COLUMNS)].astype(_DTYPES)
    _log.info("home depot: %d judgments from %s", len(df), folder)
    return df
