"""UCI Online Retail: 541,909 real invoice lines of a UK gift retailer (Dec 2010 - Dec 2011)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from moodboard.data import columns as C
from moodboard.data.records import EventType
from moodboard.datasets._paths import dataset_root, require_files
from moodboard.datasets._types import CatalogData, string_table

_log = logging.getLogger(__name__)

FOLDER = "online-retail"
FILE = "online_retail.parquet"

INVOICE = "InvoiceNo"
STOCK_CODE = "StockCode"
DESCRIPTION = "Description"
QUANTITY = "Quantity"
INVOICE_DATE = "InvoiceDate"
UNIT_PRICE = "UnitPrice"
CUSTOMER = "CustomerID"
COUNTRY = "Country"
LINE_COLUMNS = (
    INVOICE,
    STOCK_CODE,
    DESCRIPTION,
    QUANTITY,
    INVOICE_DATE,
    UNIT_PRICE,
    CUSTOMER,
    COUNTRY,
)

CURRENCY = "GBP"
#: Extra event columns (stored in ``props`` on ingestion).
EVENT_EXTRAS = ("quantity", "unit_price", "country")
#: StockCodes that are not merchandise: postage, carriage, manual entries, discounts, samples,
#: bad debt, bank and marketplace fees, charity commission.
SERVICE_CODES = ("POST", "DOT", "C2", "M", "m", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK")
#: Descriptions that mean "no description" (the xlsx -> parquet conversion wrote NaN as "nan").
_NO_DESCRIPTION = ("", "nan")


def _descriptions(lines: pd.DataFrame) -> pd.Series:
    d = lines[DESCRIPTION].astype("str").str.strip()
    return d.mask(d.isna() | d.str.lower().isin(_NO_DESCRIPTION))


def _format_price(value: float) -> str:
    return str(float(round(value, 4)))


@dataclass(frozen=True, eq=False)
class OnlineRetail:
    """The invoice lines, unchanged, and their conversion to a catalog with purchase events.

    Attributes
    ----------
    lines
        All 541,909 lines of ``online_retail.parquet`` (InvoiceNo, StockCode, Description,
        Quantity, InvoiceDate, UnitPrice, CustomerID, Country), in file order with a
        ``RangeIndex``. Cancellations have an InvoiceNo starting with ``"C"``; 135,080 lines
        have no CustomerID; 1,454 Description values are the string ``"nan"``.
    """

    lines: pd.DataFrame

    def to_catalog_data(self) -> CatalogData:
        """A catalog of the items sold and one ``purchase`` event per real sale line.

        Products, one per StockCode: title = the most frequent Description among the code's
        sale lines (UnitPrice > 0; ties go to the alphabetically first), stripped, with the
        ``"nan"`` placeholders treated as missing; price = the median UnitPrice over those
        lines, as a string; currency ``"GBP"``; no image. Codes without such a title are
        dropped: of the 4,070 StockCodes, 112 have no description at all and 20 more were
        never sold at a price > 0 (their only descriptions are stock-keeping notes such as
        ``"thrown away"`` or ``"Unsaleable, destroyed."``), leaving 3,938 products. Codes are
        case-sensitive as in the file (``85123A`` and ``85123a`` are two products).

        Events, one per line with a CustomerID (135,080 of 541,909 lines have none), that is
        not a cancellation (8,905 more lines: InvoiceNo starting with ``"C"``), has
        Quantity > 0 (no further line fails this once the first two filters are applied) and
        whose StockCode is in the catalog (none fails this either): 397,924 events by 4,339
        customers on 3,665 items. ``event_id`` is ``"<InvoiceNo>-<line index>"``, ``ts`` the
        InvoiceDate as ISO 8601 (the retailer's local time, no offset), ``user_id`` the
        CustomerID as an integer string, ``item_id`` the StockCode; ``quantity``,
        ``unit_price`` and ``country`` are extra columns. Exact duplicate lines of the file
        (5,192 among these events) are kept, each as its own event, as are 40 lines with
        UnitPrice 0 (free items). Service codes (``SERVICE_CODES``: postage, carriage, manual
        adjustments, fees) are products like any other here, with 1,550 of the events (POST
        alone 1,099); filter them out with ``SERVICE_CODES`` when only merchandise matters.

        Returns
        -------
        CatalogData
            ``name="online-retail"``, 3,938 products and 397,924 events.
        """
        lines = self.lines
        desc = _descriptions(lines)
        sold = (lines[UNIT_PRICE] > 0).to_numpy()
        sales = pd.DataFrame(
            {"code": lines[STOCK_CODE][sold], "desc": desc[sold], "price": lines[UNIT_PRICE][sold]}
        )
        counts = (
            sales.dropna(subset=["desc"])
            .groupby(["code", "desc"], sort=False)
            .size()
            .rename("n")
            .reset_index()
            .sort_values(["code", "n", "desc"], ascending=[True, False, True], kind="stable")
        )
        titles = counts.drop_duplicates("code").set_index("code")["desc"]
        prices = sales.groupby("code")["price"].median().reindex(titles.index)
        n_codes = lines[STOCK_CODE].nunique()
        _log.info("online-retail: %d of %d stock codes have a title", len(titles), n_codes)
        n = len(titles)
        products = string_table(
            {
                C.ID: titles.index.tolist(),
                C.TITLE: titles.tolist(),
                C.DESCRIPTION: [None] * n,
                C.BRAND: [None] * n,
                C.CATEGORY: [None] * n,
                C.PRICE: [_format_price(p) for p in prices.tolist()],
                C.CURRENCY: [CURRENCY] * n,
                C.IMAGE: [None] * n,
                C.CREATED_AT: [None] * n,
            }
        )
        keep = (
            lines[CUSTOMER].notna()
            & ~lines[INVOICE].str.startswith("C")
            & (lines[QUANTITY] > 0)
            & lines[STOCK_CODE].isin(titles.index)
        )
        positions = np.flatnonzero(keep.to_numpy())
        ev = lines.iloc[positions]
        m = len(ev)
        none = [None] * m
        events = {
            C.EVENT_ID: [f"{inv}-{pos}" for inv, pos in zip(ev[INVOICE], positions, strict=True)],
            C.TS: ev[INVOICE_DATE].dt.strftime("%Y-%m-%dT%H:%M:%S").tolist(),
            C.USER_ID: ev[CUSTOMER].astype("int64").astype("str").tolist(),
            C.TYPE: [EventType.PURCHASE.value] * m,
            C.ITEM_ID: ev[STOCK_CODE].tolist(),
        }
        events.update({c: none for c in C.EVENT_COLUMNS if c not in events})
        events["quantity"] = ev[QUANTITY].astype("str").tolist()
        events["unit_price"] = ev[UNIT_PRICE].astype("str").tolist()
        events["country"] = ev[COUNTRY].tolist()
        _log.info("online-retail: %d purchase events from %d lines", m, len(lines))
        return CatalogData(name="online-retail", products=products, events=string_table(events))


def load_online_retail(root: Path | str | None = None) -> OnlineRetail:
    """The UCI Online Retail invoice lines.

    Parameters
    ----------
    root
        The folder holding ``online-retail/``; default ``$MOODBOARD_DATASETS``.

    Returns
    -------
    OnlineRetail
        ``.lines`` (all 541,909 lines, unchanged) and ``.to_catalog_data()``.

    Raises
    ------
    DatasetNotFoundError
        If the folder or ``online_retail.parquet`` is missing.
    ValueError
        If the file lacks one of the expected columns.
    """
    folder = dataset_root(FOLDER, root=root)
    require_files(folder, [FILE])
    lines = pd.read_parquet(folder / FILE)
    absent = [c for c in LINE_COLUMNS if c not in lines.columns]
    if absent:
        raise ValueError(
            f"{folder / FILE} must have the columns {', '.join(LINE_COLUMNS)}. "
            f"Got {list(lines.columns)} instead."
        )
    _log.info("online-retail: %d lines from %s", len(lines), folder)
    return OnlineRetail(lines=lines)
