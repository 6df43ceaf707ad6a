"""The splits and the full-ranking metrics of the recommendation evaluation.

Two protocols:

- **leave-one-out** (S3-Rec, Zhou et al. CIKM 2020) for the Amazon sequences: per user, the
  last item is the test target and the second-to-last the validation target; models are
  fitted once on ``seq[:-2]``. Validation ranks the validation target given ``seq[:-2]``; test
  ranks the test target given ``seq[:-1]`` with the same fitted model (no retraining).
- **time split** for Online Retail: models are fitted on the purchases before the cutoff and
  rank, for every customer with a purchase before it, the items they bought after it that they
  had not bought before. Tuning uses the same split one month earlier (fit before the validation
  cutoff, targets between the two cutoffs); the chosen configuration is then fitted again on
  everything before the cutoff.

Ranking is over ALL items, excluding the items of the history (as the S3-Rec code does); ties
are broken by the lower item index, exactly as a stable sort of the scores would list them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.retrieve import TrainingData

_log = logging.getLogger(__name__)

#: The datasets ``load_split`` knows.
REC_DATASETS = ("amazon-beauty", "amazon-sports", "amazon-toys", "online-retail")
RETAIL_CUTOFF = "2011-11-01"
RETAIL_VALID_CUTOFF = "2011-10-01"


@dataclass(frozen=True, eq=False)
class Step:
    """One ranking step: for each user a history and the target item(s) to find.

    Attributes
    ----------
    histories
        Item index arrays (oldest first) given to ``score``; their items are excluded.
    targets
        Item index arrays, one or more relevant items per user.
    """

    histories: list[np.ndarray]
    targets: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.histories)

    def single_targets(self) -> np.ndarray | None:
        """The targets as one array when every user has exactly one, else None."""
        if all(len(t) == 1 for t in self.targets):
            return np.fromiter((t[0] for t in self.targets), dtype=np.int64, count=len(self))
        return None


@dataclass(frozen=True, eq=False)
class RecSplit:
    """A dataset split for tuning on validation and measuring on test.

    Attributes
    ----------
    dataset
        The dataset's public name.
    train
        What models are fitted on for tuning (and for testing when ``test_train`` is None).
    valid, test
        The validation and the test ranking steps.
    test_train
        When not None, the chosen configuration is fitted again on it before the test step.
    ks
        The cutoffs to report: ``(10,)`` or ``(10, 20)``.
    notes
        Counts worth reporting (users left out and why).
    """

    dataset: str
    train: TrainingData
    valid: Step
    test: Step
    test_train: TrainingData | None = None
    ks: tuple[int, ...] = (10,)
    notes: dict[str, int] = field(default_factory=dict)


def leave_one_out(
    sequences: Sequence[np.ndarray],
    n_items: int,
    dataset: str = "sequences",
    *,
    refit: bool = False,
    item_features: dict[str, object] | None = None,
) -> RecSplit:
    """The S3-Rec split: train ``seq[:-2]``, validate on ``seq[-2]``, test on ``seq[-1]``.

    Users with fewer than 3 items are left out (counted in ``notes``).

    Parameters
    ----------
    refit
        Fit the chosen configuration again on ``seq[:-1]`` before the test step. Off by
        default: S3-Rec tests the model fitted on ``seq[:-2]``, and the published numbers are
        measured so; with it, the validation items become training data (e.g. EASE on Beauty
        goes from NDCG@10 0.036 to 0.042).
    item_features
        Passed on as ``TrainingData.item_features``.

    Raises
    ------
    ConfigError
        If no user has 3 items or more.
    """
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) >= 3]
    if not seqs:
        raise ConfigError("leave_one_out needs users with at least 3 items. Got none.")
    features = dict(item_features or {})
    return RecSplit(
        dataset=dataset,
        train=TrainingData(n_items, [s[:-2] for s in seqs], item_features=features),
        valid=Step([s[:-2] for s in seqs], [s[-2:-1] for s in seqs]),
        test=Step([s[:-1] for s in seqs], [s[-1:] for s in seqs]),
        test_train=(
            TrainingData(n_items, [s[:-1] for s in seqs], item_features=features) if refit else None
        ),
        notes={"users": len(seqs), "users_too_short": len(sequences) - len(seqs)},
    )


def time_split(
    users: np.ndarray, items: np.ndarray, ts: np.ndarray, n_items: int, cutoff: object
) -> tuple[TrainingData, Step, dict[str, int]]:
    """Sequences before ``cutoff`` and, per user, the new items bought from it on.

    Events are ``(users[i], items[i], ts[i])`` with items already indices; each user's training
    sequence is in time order (ties keep input order). A user is evaluated when they have an
    event before the cutoff and an item after it that is not in their training history.

    Returns
    -------
    tuple
        The training sequences (users without a test target included), the test step (its
        histories are the evaluated users' training sequences) and counts.
    """
    order = np.lexsort((np.arange(len(ts)), ts, users))
    u, i, t = users[order], items[order], ts[order]
    before = t < cutoff
    train_users, starts = np.unique(u[before], return_index=True)
    seqs = np.split(i[before], starts[1:]) if len(train_users) else []
    pos = {int(x): n for n, x in enumerate(train_users)}
    later = pd.DataFrame({"u": u[~before], "i": i[~before]}).drop_duplicates()
    histories, targets, no_new = [], [], 0
    for user, grp in later.groupby("u", sort=True):
        n = pos.get(int(user))
        if n is None:
            continue
        new = np.setdiff1d(grp["i"].to_numpy(), seqs[n])
        if len(new) == 0:
            no_new += 1
            continue
        histories.append(seqs[n])
        targets.append(new)
    notes = {
        "train_users": len(seqs),
        "users": len(histories),
        "users_without_new_items": no_new,
        "users_without_history": int(later["u"].nunique()) - len(histories) - no_new,
    }
    return TrainingData(n_items=n_items, sequences=seqs), Step(histories, targets), notes


def sample_rows(n: int, max_users: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random sample of ``max_users`` of ``n`` rows, sorted (all of them
    when ``max_users`` is None or not below ``n``)."""
    if max_users is None or max_users >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_users, replace=False))


def _amazon_split(
    name: str, root: Path | None, max_users: int | None, seed: int, refit: bool
) -> RecSplit:
    from moodboard.datasets import load_amazon

    data = load_amazon(name.removeprefix("amazon-"), root=root)
    keep = sample_rows(data.n_users, max_users, seed)
    # file ids are 1 .. n_items - 1; the contract's items are 0-based
    seqs = [data.sequences[k].astype(np.int64) - 1 for k in keep]
    attrs = [
        np.asarray(data.item_attributes.get(i, []), dtype=np.int64) for i in range(1, data.n_items)
    ]
    return leave_one_out(
        seqs, data.n_items - 1, dataset=name, refit=refit, item_features={"attributes": attrs}
    )


def _retail_split(root: Path | None, max_users: int | None, seed: int) -> RecSplit:
    from moodboard.datasets import load_online_retail

    data = load_online_retail(root=root).to_catalog_data()
    items = data.products.column(C.ID).to_pylist()
    index = {x: n for n, x in enumerate(items)}
    ev = data.events.select([C.USER_ID, C.ITEM_ID, C.TS]).to_pandas()
    customers = np.unique(ev[C.USER_ID].to_numpy())
    chosen = customers[sample_rows(len(customers), max_users, seed)]
    ev = ev[ev[C.USER_ID].isin(chosen)]
    users = ev[C.USER_ID].astype("int64").to_numpy()
    item_idx = ev[C.ITEM_ID].map(index).to_numpy(dtype=np.int64)
    ts = pd.to_datetime(ev[C.TS]).to_numpy()
    n = len(items)
    cut, vcut = np.datetime64(RETAIL_CUTOFF), np.datetime64(RETAIL_VALID_CUTOFF)
    test_train, test, notes = time_split(users, item_idx, ts, n, cut)
    early = ts < cut
    train, valid, vnotes = time_split(users[early], item_idx[early], ts[early], n, vcut)
    notes |= {f"valid_{k}": v for k, v in vnotes.items()}
    _log.info("online-retail split: %s", notes)
    return RecSplit(
        dataset="online-retail",
        train=train,
        valid=valid,
        test=test,
        test_train=test_train,
        ks=(10, 20),
        notes=notes,
    )


def load_split(
    dataset: str,
    root: Path | str | None = None,
    max_users: int | None = None,
    seed: int = 0,
    refit: bool = False,
) -> RecSplit:
    """The evaluation split of a public dataset.

    Parameters
    ----------
    dataset
        ``"amazon-beauty"``, ``"amazon-sports"``, ``"amazon-toys"`` (leave-one-out) or
        ``"online-retail"`` (time split at 2011-11-01, tuned on 2011-10).
    root
        The datasets folder; default ``$MOODBOARD_DATASETS``.
    max_users
        Keep a seeded random sample of this many users (customers) for a quick run; items
        stay all items.
    seed
        Seed of that sample.
    refit
        Leave-one-out only: fit the chosen configuration again on ``seq[:-1]`` before the
        test step (see ``leave_one_out``); the time split always refits.

    Raises
    ------
    ConfigError
        If ``dataset`` is unknown or ``max_users < 1``.
    DatasetNotFoundError
        If the dataset's files are missing.
    """
    if dataset not in REC_DATASETS:
        raise ConfigError(
            f"The 'dataset' parameter of load_split must be one of {', '.join(REC_DATASETS)}. "
            f"Got {dataset!r} instead."
        )
    if max_users is not None and max_users < 1:
        raise ConfigError(f"max_users must be >= 1. Got {max_users} instead.")
    path = None if root is None else Path(root)
    if dataset == "online-retail":
        return _retail_split(path, max_users, seed)
    return _amazon_split(dataset, path, max_users, seed, refit)


def target_ranks(scores: np.ndarray, targets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """0-based rank of every target in its row's ranking; ``n_items`` when it cannot be ranked.

    The rank counts the items scored higher, plus the items scored equal with a lower index.
    A target whose score is not finite (``-inf``: excluded) is not ranked.
    """
    n = scores.shape[1]
    lengths = np.fromiter((len(t) for t in targets), dtype=np.int64, count=len(targets))
    rows = np.repeat(np.arange(len(targets)), lengths)
    cols = (
        np.concatenate([np.asarray(t, dtype=np.int64) for t in targets])
        if lengths.sum()
        else np.zeros(0, dtype=np.int64)
    )
    ranks = np.empty(len(cols), dtype=np.int64)
    cols_index = np.arange(n)
    for lo in range(0, len(cols), 1024):
        r, c = rows[lo : lo + 1024], cols[lo : lo + 1024]
        s = scores[r]
        st = s[np.arange(len(r)), c][:, None]
        rank = (s > st).sum(1) + ((s == st) & (cols_index[None, :] < c[:, None])).sum(1)
        rank[~np.isfinite(st[:, 0])] = n
        ranks[lo : lo + 1024] = rank
    return np.split(ranks, np.cumsum(lengths)[:-1])
