"""Where public datasets live: ``$MOODBOARD_DATASETS/<folder>``, or a download cache.

Nothing is downloaded unless a loader is called with ``download=True``; the files then go to
``$XDG_CACHE_HOME/moodboard/datasets/<folder>`` (default ``~/.cache/...``), each written to a
temporary name and renamed, so an interrupted download never leaves a truncated file behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from moodboard.errors import DatasetNotFoundError

_log = logging.getLogger(__name__)

ENV_VAR = "MOODBOARD_DATASETS"
#: Variables that, when set to a true value, forbid any download.
OFFLINE_VARS = ("MOODBOARD_OFFLINE", "HF_HUB_OFFLINE")

#: Where each dataset folder can be obtained (shown in the not-found error).
SOURCES: dict[str, str] = {
    "fashion-product-images-small": (
        "Kaggle 'Fashion Product Images (Small)' (styles.csv and images/<id>.jpg)"
    ),
    "online-retail": (
        "UCI Machine Learning Repository 'Online Retail' (convert 'Online Retail.xlsx' to "
        "online_retail.parquet)"
    ),
    "amazon-seqrec": (
        "GitHub RUCAIBox/CIKM2020-S3Rec, folder data/ (or call the loader with download=True)"
    ),
    "open-bandit-dataset": (
        "the obp package's obd/ folder (pip download obp==0.4.1; {random,bts}/{all,men,women}/)"
    ),
    "home-depot-search-relevance": "Kaggle competition 'Home Depot Product Search Relevance'",
    "wands-queries": (
        "GitHub wayfair/WANDS, dataset/query.csv (or call the loader with download=True)"
    ),
}

_RAW = "https://raw.githubusercontent.com"
#: Public raw-file base URLs of the datasets that have one.
DOWNLOAD_BASES: dict[str, str] = {
    "amazon-seqrec": f"{_RAW}/RUCAIBox/CIKM2020-S3Rec/HEAD/data",
    "wands-queries": f"{_RAW}/wayfair/WANDS/HEAD/dataset",
}


def check_choice(value: object, param: str, owner: str, choices: Iterable[str]) -> None:
    """Raise the scikit-learn style error when ``value`` is not one of ``choices``.

    Raises
    ------
    ValueError
        "The 'param' parameter of owner must be one of 'a', 'b'. Got 'x' instead."
    """
    choices = list(choices)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"The {param!r} parameter of {owner} must be one of {listed}. Got {value!r} instead."
        )


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/moodboard/datasets`` (default ``~/.cache/moodboard/datasets``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "moodboard" / "datasets"


def offline() -> bool:
    """Whether downloads are forbidden by ``MOODBOARD_OFFLINE`` or ``HF_HUB_OFFLINE``."""
    return any(
        os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no") for v in OFFLINE_VARS
    )


def _not_found(folder: str, looked: list[str], extra: str = "") -> DatasetNotFoundError:
    where = SOURCES.get(folder)
    msg = (
        f"Dataset {folder!r} not found: set {ENV_VAR} to the folder holding {folder}/ "
        f"(looked in {'; '.join(looked)})."
    )
    if where:
        msg += f" Get it from {where}."
    return DatasetNotFoundError(msg + extra)


def dataset_root(
    folder: str,
    *,
    download: Callable[[Path], None] | None = None,
    root: Path | str | None = None,
) -> Path:
    """The folder holding one public dataset.

    Looks in ``root / folder`` when ``root`` is given, else in ``$MOODBOARD_DATASETS/folder``,
    then in the download cache. With ``download``, a folder not found there is fetched into the
    cache by ``download(cache_folder)`` (which must skip files already present).

    Parameters
    ----------
    folder
        The dataset's folder name, e.g. ``"amazon-seqrec"``.
    download
        A function that fetches the dataset's files into the folder it is given; None (the
        default) never touches the network.
    root
        The folder holding the dataset folders; overrides ``MOODBOARD_DATASETS``.

    Raises
    ------
    DatasetNotFoundError
        If the folder is not found and cannot be downloaded (no ``download``, offline, or the
        download failed). The message names ``MOODBOARD_DATASETS`` and the folder expected.
    """
    looked: list[str] = []
    base = root if root is not None else os.environ.get(ENV_VAR)
    if base:
        candidate = Path(base).expanduser() / folder
        if candidate.is_dir():
            return candidate
        looked.append(str(candidate))
    else:
        looked.append(f"{ENV_VAR} is not set")
    cached = cache_root() / folder
    if download is None:
        if cached.is_dir():
            return cached
        looked.append(str(cached))
        raise _not_found(folder, looked)
    if offline():
        looked.append(str(cached))
        raise _not_found(folder, looked, f" Not downloading: {' or '.join(OFFLINE_VARS)} is set.")
    try:
        _log.info("downloading dataset %s into %s", folder, cached)
        download(cached)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        looked.append(str(cached))
        raise _not_found(folder, looked, f" The download failed: {e}") from e
    return cached


def require_files(folder: Path, names: Iterable[str]) -> None:
    """Check that a dataset folder holds the files a loader reads.

    Raises
    ------
    DatasetNotFoundError
        If one is missing; the message names the file and ``MOODBOARD_DATASETS``.
    """
    for name in names:
        path = folder / name
        if not path.exists():
            raise DatasetNotFoundError(
                f"Dataset {folder.name!r} is incomplete: {path} is missing. Point {ENV_VAR} at "
                f"the folder holding a complete {folder.name}/."
            )


def fetch(url: str, dest: Path, *, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest`` atomically, unless ``dest`` already exists.

    Raises
    ------
    urllib.error.URLError
        If the download fails (nothing is left at ``dest``).
    """
    if dest.is_file():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as fh:
            shutil.copyfileobj(response, fh)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _log.info("downloaded %s", url)


def github_download(folder: str, files: Mapping[str, str]) -> Callable[[Path], None]:
    """A ``download`` callable fetching ``{local name: remote name}`` from the folder's base URL."""
    base = DOWNLOAD_BASES[folder]

    def download(dest: Path) -> None:
        for local, remote in files.items():
            fetch(f"{base}/{remote}", dest / local)

    return download
