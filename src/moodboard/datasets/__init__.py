"""Loaders for the public datasets moodboard is tested and benchmarked on.

The data is never part of the repository: loaders read ``$MOODBOARD_DATASETS/<folder>`` (see
``DATASETS``), and raise ``DatasetNotFoundError`` naming that variable when it is missing.
``load_amazon`` and ``load_wands_queries`` can also download into a cache with
``download=True``.
"""

from __future__ import annotations

import logging

from moodboard.datasets._paths import ENV_VAR, check_choice, dataset_root
from moodboard.datasets._types import CatalogData, SeqRecData
from moodboard.datasets.amazon import load_amazon
from moodboard.datasets.fashion import load_fashion
from moodboard.datasets.home_depot import load_home_depot
from moodboard.datasets.online_retail import OnlineRetail, load_online_retail
from moodboard.datasets.open_bandit import OpenBanditData, load_open_bandit
from moodboard.datasets.wands import load_wands_queries
from moodboard.ingest.run import IngestReport, Progress, ingest_catalog, ingest_events
from moodboard.ingest.workspace import Workspace

_log = logging.getLogger(__name__)

#: Public dataset name -> folder under ``$MOODBOARD_DATASETS``.
DATASETS: dict[str, str] = {
    "fashion": "fashion-product-images-small",
    "online-retail": "online-retail",
    "amazon-beauty": "amazon-seqrec",
    "amazon-sports": "amazon-seqrec",
    "amazon-toys": "amazon-seqrec",
    "open-bandit": "open-bandit-dataset",
    "home-depot": "home-depot-search-relevance",
    "wands-queries": "wands-queries",
}

#: The datasets ``ingest_dataset`` can put into a workspace (they have a catalog).
INGESTIBLE = ("fashion", "online-retail")


def load_catalog_data(name: str) -> CatalogData:
    """A catalog dataset (``"fashion"`` or ``"online-retail"``) as ``CatalogData``.

    Raises
    ------
    ValueError
        If ``name`` is not one of ``INGESTIBLE``.
    DatasetNotFoundError
        If the dataset is not under ``$MOODBOARD_DATASETS``.
    """
    check_choice(name, "name", "load_catalog_data", INGESTIBLE)
    if name == "fashion":
        return load_fashion()
    return load_online_retail().to_catalog_data()


def ingest_dataset(
    ws: Workspace, name: str, *, progress: Progress | None = None
) -> dict[str, IngestReport]:
    """Load a catalog dataset and ingest its products, then its events, into a workspace.

    Parameters
    ----------
    ws
        The workspace (created if needed).
    name
        ``"fashion"`` (9,583 products, no events) or ``"online-retail"`` (3,938 products,
        397,924 purchase events).
    progress
        Called with the number of rows read after each batch, as by ``ingest_catalog``.

    Returns
    -------
    dict
        ``{"catalog": IngestReport}``, plus ``"events"`` when the dataset has events.

    Raises
    ------
    ValueError
        If ``name`` is not ``"fashion"`` or ``"online-retail"``.
    DatasetNotFoundError
        If the dataset is not under ``$MOODBOARD_DATASETS``.
    """
    check_choice(name, "name", "ingest_dataset", INGESTIBLE)
    base = dataset_root(DATASETS[name])
    data = load_catalog_data(name)
    reports = {"catalog": ingest_catalog(ws, [data.products], base=base, progress=progress)}
    if data.events is not None:
        reports["events"] = ingest_events(ws, [data.events], progress=progress)
    for kind, report in reports.items():
        _log.info("%s %s: %s", name, kind, report.summary())
    return reports


__all__ = [
    "DATASETS",
    "ENV_VAR",
    "INGESTIBLE",
    "CatalogData",
    "OnlineRetail",
    "OpenBanditData",
    "SeqRecData",
    "dataset_root",
    "ingest_dataset",
    "load_amazon",
    "load_catalog_data",
    "load_fashion",
    "load_home_depot",
    "load_online_retail",
    "load_open_bandit",
    "load_wands_queries",
]
