"""The fashion catalog: 9,583 real Myntra products with a 224x224 image each."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from moodboard.data import columns as C
from moodboard.datasets._paths import dataset_root, require_files
from moodboard.datasets._types import CatalogData, string_table

_log = logging.getLogger(__name__)

FOLDER = "fashion-product-images-small"
STYLES = "styles.csv"
IMAGES = "images"

#: The columns of ``styles.csv``, in file order.
STYLES_COLUMNS = (
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
)
#: The columns kept as product attributes.
ATTRIBUTE_COLUMNS = STYLES_COLUMNS[1:-1]
_NAME = "productDisplayName"
_CATEGORY_PARTS = ("masterCategory", "subCategory", "articleType")


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def read_styles(path: Path) -> list[dict[str, str | None]]:
    """The rows of a ``styles.csv``, tolerant of the Kaggle file's ragged rows.

    The original Kaggle ``styles.csv`` has product names with unquoted commas, so some rows
    have more than 10 fields; the extra fields belong to ``productDisplayName`` (the last
    column) and are joined back with commas. Short rows are padded with nulls. Values are
    stripped; empty values become None.

    Raises
    ------
    ValueError
        If the header is not the expected one.
    """
    rows: list[dict[str, str | None]] = []
    n_long = n_short = 0
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        if tuple(header) != STYLES_COLUMNS:
            raise ValueError(
                f"{path} must have the columns {', '.join(STYLES_COLUMNS)}. Got {header} instead."
            )
        width = len(STYLES_COLUMNS)
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) > width:
                n_long += 1
                fields = [*fields[: width - 1], ",".join(fields[width - 1 :])]
            elif len(fields) < width:
                n_short += 1
                fields = fields + [""] * (width - len(fields))
            rows.append({k: _clean(v) for k, v in zip(STYLES_COLUMNS, fields, strict=True)})
    if n_long or n_short:
        _log.warning(
            "%s: %d rows had commas in the product name, %d rows were short", path, n_long, n_short
        )
    return rows


def load_fashion(root: Path | str | None = None) -> CatalogData:
    """The fashion catalog, ready for ``ingest_catalog``.

    Mapping from ``styles.csv``: ``id`` -> id, ``productDisplayName`` -> title,
    ``masterCategory/subCategory/articleType`` -> category, ``images/<id>.jpg`` -> image (an
    absolute path, only when the file exists). The dataset has no description, brand, price,
    currency nor creation date: those stay null. The other columns (gender, masterCategory,
    subCategory, articleType, baseColour, season, year, usage) are attribute columns; missing
    values stay null (3 products have no baseColour and 8 no usage).

    Parameters
    ----------
    root
        The folder holding ``fashion-product-images-small/``; default ``$MOODBOARD_DATASETS``.

    Returns
    -------
    CatalogData
        9,583 products and no events.

    Raises
    ------
    DatasetNotFoundError
        If the folder or ``styles.csv`` is missing.
    ValueError
        If ``styles.csv`` does not have the expected header.
    """
    folder = dataset_root(FOLDER, root=root)
    require_files(folder, [STYLES])
    rows = read_styles(folder / STYLES)
    images = (folder / IMAGES).resolve()
    present = {p.name for p in images.iterdir()} if images.is_dir() else set()

    def image(pid: str | None) -> str | None:
        name = f"{pid}.jpg"
        return str(images / name) if pid and name in present else None

    def category(row: dict[str, str | None]) -> str | None:
        parts = [row[p] for p in _CATEGORY_PARTS if row[p]]
        return "/".join(parts) or None

    nulls = [None] * len(rows)
    cols: dict[str, list[str | None]] = {
        C.ID: [r["id"] for r in rows],
        C.TITLE: [r[_NAME] for r in rows],
        C.DESCRIPTION: nulls,
        C.BRAND: nulls,
        C.CATEGORY: [category(r) for r in rows],
        C.PRICE: nulls,
        C.CURRENCY: nulls,
        C.IMAGE: [image(r["id"]) for r in rows],
        C.CREATED_AT: nulls,
    }
    cols.update({a: [r[a] for r in rows] for a in ATTRIBUTE_COLUMNS})
    missing_images = sum(v is None for v in cols[C.IMAGE])
    if missing_images:
        _log.warning("fashion: %d products have no image file", missing_images)
    _log.info("fashion: %d products from %s", len(rows), folder)
    return CatalogData(name="fashion", products=string_table(cols))
