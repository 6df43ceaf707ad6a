"""The Open Bandit Dataset small sample (ZOZOTOWN, Nov 2019), as shipped in ``obp``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from moodboard.datasets._paths import check_choice, dataset_root, require_files

_log = logging.getLogger(__name__)

FOLDER = "open-bandit-dataset"
POLICIES = ("random", "bts")
CAMPAIGNS = ("all", "men", "women")
ITEM_CONTEXT = "item_context.csv"
LOG_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")


@dataclass(frozen=True, eq=False)
class OpenBanditData:
    """One logged bandit feedback file and its items.

    Attributes
    ----------
    log
        One row per impression in file order (which is time order): ``timestamp`` (UTC
        datetimes), ``item_id`` (0-based action), ``position`` (1..3), ``click`` (0/1),
        ``propensity_score``, ``user_feature_*`` and ``user-item_affinity_*``.
    item_context
        One row per item: ``item_id`` and ``item_feature_0..3``.
    n_actions
        The number of items (80 for "all", 34 for "men", 46 for "women").
    len_list
        The number of slots on a page: the largest position, 3.
    """

    log: pd.DataFrame
    item_context: pd.DataFrame
    n_actions: int
    len_list: int


def load_open_bandit(
    policy: str = "random", campaign: str = "all", root: Path | str | None = None
) -> OpenBanditData:
    """The logged feedback of one behaviour policy on one campaign.

    Parameters
    ----------
    policy
        ``"random"`` (uniform: propensity 1/80 on "all") or ``"bts"`` (Bernoulli Thompson
        Sampling).
    campaign
        ``"all"``, ``"men"`` or ``"women"``.
    root
        The folder holding ``open-bandit-dataset/``; default ``$MOODBOARD_DATASETS``.

    Returns
    -------
    OpenBanditData
        10,000 logged impressions, without the file's unnamed index column.

    Raises
    ------
    ValueError
        If ``policy`` or ``campaign`` is not one of the choices, or the log lacks a column.
    DatasetNotFoundError
        If the files are missing.
    """
    check_choice(policy, "policy", "load_open_bandit", POLICIES)
    check_choice(campaign, "campaign", "load_open_bandit", CAMPAIGNS)
    folder = dataset_root(FOLDER, root=root)
    sub = f"{policy}/{campaign}"
    require_files(folder, [f"{sub}/{campaign}.csv", f"{sub}/{ITEM_CONTEXT}"])
    log = pd.read_csv(folder / sub / f"{campaign}.csv", index_col=0)
    item_context = pd.read_csv(folder / sub / ITEM_CONTEXT, index_col=0)
    absent = [c for c in LOG_COLUMNS if c not in log.columns]
    if absent:
        raise ValueError(
            f"{folder / sub / f'{campaign}.csv'} must have the columns {', '.join(LOG_COLUMNS)}. "
            f"Got {list(log.columns)} instead."
        )
    log = log.reset_index(drop=True)
    item_context = item_context.reset_index(drop=True)
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    data = OpenBanditData(
        log=log,
        item_context=item_context,
        n_actions=int(item_context["item_id"].nunique()),
        len_list=int(log["position"].max()),
    )
    _log.info("open bandit %s/%s: %d rows, %d actions", policy, campaign, len(log), data.n_actions)
    return data
