"""Amazon review 5-core sequences as published with S3-Rec (Beauty, Sports, Toys)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from moodboard.datasets._paths import check_choice, dataset_root, github_download, require_files
from moodboard.datasets._types import SeqRecData

_log = logging.getLogger(__name__)

FOLDER = "amazon-seqrec"
#: Public name -> file stem in ``amazon-seqrec/``.
AMAZON_FILES: dict[str, str] = {
    "beauty": "Beauty",
    "sports": "Sports_and_Outdoors",
    "toys": "Toys_and_Games",
}


def _files(stem: str) -> tuple[str, str]:
    return f"{stem}.txt", f"{stem}_item2attributes.json"


def read_sequences(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """``user item1 item2 ...`` lines as user ids and item-id sequences.

    Raises
    ------
    ValueError
        If a line is not whitespace-separated integers, or a user has no items.
    """
    users: list[int] = []
    sequences: list[np.ndarray] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                ids = np.array(fields, dtype=np.int64)
            except ValueError:
                raise ValueError(f"{path}, line {n}: expected integers, got {line!r}") from None
            if len(ids) < 2:
                raise ValueError(f"{path}, line {n}: user {fields[0]} has no items")
            users.append(int(ids[0]))
            sequences.append(ids[1:].astype(np.int32))
    return np.asarray(users, dtype=np.int64), sequences


def load_amazon(name: str, root: Path | str | None = None, download: bool = False) -> SeqRecData:
    """One of the S3-Rec Amazon datasets, item ids kept exactly as in the file.

    Parameters
    ----------
    name
        ``"beauty"`` (22,363 users, 12,101 items, 198,502 interactions), ``"sports"``
        (35,598 / 18,357 / 296,337) or ``"toys"`` (19,412 / 11,924 / 167,597).
    root
        The folder holding ``amazon-seqrec/``; default ``$MOODBOARD_DATASETS``.
    download
        If the files are not found, fetch them from GitHub RUCAIBox/CIKM2020-S3Rec into
        ``$XDG_CACHE_HOME/moodboard/datasets/amazon-seqrec``. Off by default.

    Returns
    -------
    SeqRecData
        Item ids are 1..n_items-1 (1-based, as the published protocol uses them).

    Raises
    ------
    ValueError
        If ``name`` is not one of the three, or a file is malformed.
    DatasetNotFoundError
        If the files are missing and not downloaded.
    """
    check_choice(name, "name", "load_amazon", AMAZON_FILES)
    stem = AMAZON_FILES[name]
    seq_file, attr_file = _files(stem)
    fetcher = github_download(FOLDER, {seq_file: seq_file, attr_file: attr_file})
    folder = dataset_root(FOLDER, root=root, download=fetcher if download else None)
    require_files(folder, [seq_file, attr_file])
    user_ids, sequences = read_sequences(folder / seq_file)
    with open(folder / attr_file, encoding="utf-8") as fh:
        raw = json.load(fh)
    item_attributes = {int(k): [int(a) for a in v] for k, v in raw.items()}
    max_item = max((int(s.max()) for s in sequences if len(s)), default=0)
    data = SeqRecData(
        name=name,
        user_ids=user_ids,
        sequences=sequences,
        n_items=max_item + 1,
        item_attributes=item_attributes,
    )
    _log.info(
        "amazon %s: %d users, %d interactions, n_items %d",
        name,
        data.n_users,
        data.n_interactions,
        data.n_items,
    )
    return data
