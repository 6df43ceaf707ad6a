"""Online Retail, served: the home feed as a store would serve it, against EASE.

The purchases before ``RETAIL_CUTOFF`` (2011-11-01) go into a new workspace in a temporary
folder (``ingest_catalog`` and ``ingest_events``, as ``moodboard ingest dataset online-retail``
does, with the later purchases left out), ``moodboard.build`` builds it as ``moodboard build``
does, and the workspace is served by the app ``moodboard serve`` runs (``serve.app.create_app``,
in-process through FastAPI's ``TestClient``). Each customer with a purchase before the cutoff
and one after it asks ``GET /feed/{customer}?k=20``; the page is scored against what the
customer bought from the cutoff on:

- ``recall@20``: the share of the distinct items they bought after the cutoff that the page
  shows (repeat purchases count: the feed leaves out what the customer already bought unless
  ``surfaces.feed.exclude_engaged`` is off);
- ``recall@20_new``: the same over the items they had not bought before (customers with at
  least one such item).

The same workspace is then served again with ``exclude_engaged`` off (``served_repeats``):
what a store whose customers buy the same items again would show.

EASE (``retrieve.baselines``, the closed form of Steck 2019) is fitted in the same run on the
same purchases (every customer's full sequence before the cutoff) and ranks all items for the
same customers: over all items for ``recall@20`` and without the customer's items for
``recall@20_new``, at ``l2`` 500 and at each point of ``BASELINE_GRIDS["ease"]``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.build.fusion import exclude_histories, top_lists
from moodboard.config import Settings, load_settings
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.evaluate.rec_protocol import RETAIL_CUTOFF, sample_rows
from moodboard.evaluate.recs import BASELINE_GRIDS
from moodboard.evaluate.served_metrics import Recalls, paired_difference
from moodboard.ingest import Workspace, ingest_catalog, ingest_events
from moodboard.retrieve import TrainingData
from moodboard.retrieve.baselines import EASE, EASEConfig

_log = logging.getLogger(__name__)
Progress = Callable[[str], None]

#: The EASE lambda the reference figure was measured with.
EASE_L2 = 500.0
#: Customers asked per progress message.
_EVERY = 250


@dataclass(frozen=True, eq=False)
class ServedSplit:
    """The Online Retail purchases split at the cutoff, for a served evaluation.

    Attributes
    ----------
    products
        The catalog (every product, ``C.PRODUCT_COLUMNS``).
    events
        The purchase events before the cutoff (what the workspace ingests).
    item_ids
        The catalog's ids; an item's index is its position here.
    users
        The evaluated customers: a purchase before the cutoff and one from it on.
    histories
        Their purchases before the cutoff (item indices, in time order, repeats kept).
    bought
        The distinct items each bought from the cutoff on.
    new
        The part of ``bought`` not in the customer's history (possibly empty).
    train
        Every customer's purchases before the cutoff, in time order (what EASE fits on).
    """

    products: pa.Table
    events: pa.Table
    item_ids: list[str]
    users: list[str]
    histories: list[np.ndarray]
    bought: list[np.ndarray]
    new: list[np.ndarray]
    train: TrainingData


def served_split(
    root: Path | str | None = None, max_users: int | None = None, seed: int = 0
) -> ServedSplit:
    """The Online Retail purchases split at ``RETAIL_CUTOFF``.

    Parameters
    ----------
    root
        The datasets folder; default ``$MOODBOARD_DATASETS``.
    max_users
        A quick run: keep a seeded random sample of this many customers (their purchases
        only, before and after the cutoff) and the products they bought (the catalog the
        build embeds and every method ranks); None: every customer and every product.
    seed
        Seed of that sample.

    Raises
    ------
    ConfigError
        If ``max_users < 1``.
    DatasetNotFoundError
        If the dataset's files are missing.
    """
    from moodboard.datasets import load_online_retail

    if max_users is not None and max_users < 1:
        raise ConfigError(f"max_users must be >= 1. Got {max_users} instead.")
    data = load_online_retail(root=root).to_catalog_data()
    events = data.events
    customers = np.unique(events.column(C.USER_ID).to_numpy(zero_copy_only=False))
    chosen = customers[sample_rows(len(customers), max_users, seed)]
    events = events.filter(pc.is_in(events.column(C.USER_ID), pa.array(chosen)))
    products = data.products
    if max_users is not None:
        bought = pc.unique(events.column(C.ITEM_ID))
        products = products.filter(pc.is_in(products.column(C.ID), bought))
    item_ids = products.column(C.ID).to_pylist()
    before = pc.less(events.column(C.TS), RETAIL_CUTOFF)
    ev = events.select([C.USER_ID, C.ITEM_ID, C.TS]).to_pandas()
    ev["i"] = ev[C.ITEM_ID].map({x: n for n, x in enumerate(item_ids)}).astype("int64")
    ev["before"] = before.to_numpy(zero_copy_only=False)
    ev = ev.sort_values([C.USER_ID, C.TS], kind="stable")
    early = ev[ev["before"]].groupby(C.USER_ID, sort=True)["i"]
    history = {u: g.to_numpy() for u, g in early}
    users, histories, bought, new = [], [], [], []
    for user, g in ev[~ev["before"]].groupby(C.USER_ID, sort=True)["i"]:
        h = history.get(user)
        if h is None:
            continue
        items = np.unique(g.to_numpy())
        users.append(str(user))
        histories.append(h)
        bought.append(items)
        new.append(np.setdiff1d(items, h))
    train = TrainingData(n_items=len(item_ids), sequences=list(history.values()))
    _log.info(
        "online-retail served split: %d customers before the cutoff, %d evaluated (%d with new "
        "items)",
        len(history),
        len(users),
        sum(len(n) > 0 for n in new),
    )
    return ServedSplit(
        products,
        events.filter(before),
        item_ids,
        users,
        histories,
        bought,
        new,
        train,
    )


def ease_recalls(
    split: ServedSplit, l2: float, k: int, batch: int = 1024
) -> tuple[Recalls, dict[str, float]]:
    """EASE fitted on ``split.train``: its recalls (all items: history not excluded; new
    items: history excluded), and its fit and scoring seconds."""
    t0 = time.perf_counter()
    model = EASE(EASEConfig(l2=l2, threads=1)).fit(split.train)
    fit_s = time.perf_counter() - t0
    every, new = [], []
    for lo in range(0, len(split.histories), batch):
        hist = split.histories[lo : lo + batch]
        s = np.asarray(model.score(hist), dtype=np.float32)
        every.append(top_lists(s, k))
        new.append(top_lists(exclude_histories(s, hist), k))
    empty = np.empty((0, k), dtype=np.int32)
    lists = np.concatenate(every) if every else empty
    recalls = Recalls.of(
        split.bought, split.new, k, list(lists), list(np.concatenate(new) if new else empty)
    )
    seconds = {"fit_s": round(fit_s, 2), "score_s": round(time.perf_counter() - t0 - fit_s, 2)}
    return recalls, seconds


def build_workspace(split: ServedSplit, root: Path, settings: Settings) -> dict[str, Any]:
    """Ingest the split's catalog and purchases before the cutoff into a new workspace at
    ``root`` and build it; returns the build's manifest."""
    from moodboard.build import build
    from moodboard.datasets import dataset_root

    ws = Workspace(root).init()
    ingest_catalog(ws, [split.products], base=dataset_root("online-retail"), check_images=False)
    ingest_events(ws, [split.events])
    return build(ws, settings=settings)


def served_feeds(
    root: Path, settings: Settings, users: Sequence[str], k: int, say: Progress
) -> tuple[list[list[str]], list[bool]]:
    """Each user's ``GET /feed/{user}?k=k`` page from the app ``moodboard serve`` runs over
    the workspace at ``root``: its item ids and whether it was personalized."""
    from fastapi.testclient import TestClient

    from moodboard.serve.app import create_app

    serve = settings.serve.model_copy(update={"watch_interval_s": 0})
    app = create_app(root, settings.model_copy(update={"serve": serve}))
    pages, personalized = [], []
    with TestClient(app) as client:
        for n, user in enumerate(users):
            if n % _EVERY == 0:
                say(f"served feed: customer {n + 1:,} of {len(users):,}")
            # a fixed session: the exploration slice of a page does not depend on the day
            r = client.get(f"/feed/{quote(user, safe='')}", params={"k": k, "session": "eval"})
            r.raise_for_status()
            page = r.json()
            pages.append([it["id"] for it in page["items"]])
            personalized.append(bool(page["personalized"]))
    return pages, personalized


def _repeats(settings: Settings) -> Settings:
    """``settings`` with the feed showing engaged items too (``exclude_engaged`` off)."""
    feed = settings.surfaces.feed.model_copy(update={"exclude_engaged": False})
    surfaces = settings.surfaces.model_copy(update={"feed": feed})
    return settings.model_copy(update={"surfaces": surfaces})


def _served_recalls(
    split: ServedSplit, k: int, root: Path, settings: Settings, say: Progress
) -> tuple[Recalls, float]:
    """The recalls of the served pages, and the share of them that were personalized."""
    pages, personalized = served_feeds(root, settings, split.users, k, say)
    index = {x: n for n, x in enumerate(split.item_ids)}
    lists = [np.array([index.get(i, -1) for i in p], dtype=np.int64) for p in pages]
    share = round(float(np.mean(personalized)), 4) if personalized else 0.0
    return Recalls.of(split.bought, split.new, k, lists), share


def evaluate_served(
    split: ServedSplit,
    settings: Settings | None = None,
    k: int = 20,
    work_dir: Path | str | None = None,
    progress: Progress | None = None,
    ease_grid: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Build, serve and score the feed of ``split``'s customers, and EASE beside it.

    Parameters
    ----------
    split
        From ``served_split``.
    settings
        What the build and the server read; default ``load_settings()``.
    k
        The page size asked and the recall cutoff.
    work_dir
        Where the workspace is built (kept); default a temporary folder, removed after.
    progress
        Receives a message per phase.
    ease_grid
        The EASE lambdas measured beside ``EASE_L2`` (500, reported as ``ease``); default the
        points of ``BASELINE_GRIDS["ease"]``; all are reported in ``ease_grid``.

    Returns
    -------
    dict
        ``{"served": {"recall@20", "recall@20_new", "users", "users_new", "personalized",
        "vs_ease": {"recall@20": {"estimate", "ci"}, "recall@20_new": {...}}},
        "served_repeats": {...}, "ease": {... "l2": 500}, "ease_grid": {l2: {...}},
        "build": {...}, "timings_s": {...}}``; ``served_repeats`` (the same workspace served
        with ``surfaces.feed.exclude_engaged`` off: what a store whose customers re-buy would
        show) when the settings exclude engaged items; ``vs_ease`` the per-customer difference
        to EASE at lambda 500 with its 95% bootstrap interval.

    Raises
    ------
    ConfigError
        If ``k < 1``.
    """
    if k < 1:
        raise ConfigError(f"The 'k' parameter of evaluate_served must be >= 1. Got {k} instead.")
    say = progress or (lambda m: None)
    settings = settings or load_settings()
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="moodboard-served-") as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp) / "workspace"
        say("ingesting and building the purchases before the cutoff")
        t0 = time.perf_counter()
        manifest = build_workspace(split, root, settings)
        timings["ingest_and_build"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        served = {"served": _served_recalls(split, k, root, settings, say)}
        timings["serve"] = round(time.perf_counter() - t0, 2)
        if settings.surfaces.feed.exclude_engaged:
            say("the served feed again, engaged items allowed")
            served["served_repeats"] = _served_recalls(split, k, root, _repeats(settings), say)
    t0 = time.perf_counter()
    if ease_grid is None:
        ease_grid = [float(p["l2"]) for p in BASELINE_GRIDS["ease"]]
    say("EASE on the same purchases")
    ease: dict[str, dict[str, Any]] = {}
    runs = {l2: ease_recalls(split, l2, k) for l2 in sorted({EASE_L2, *map(float, ease_grid)})}
    for l2, (recalls, seconds) in runs.items():
        ease[f"{l2:g}"] = recalls.summary(k) | {"l2": l2, **seconds}
    reference = runs[EASE_L2][0]
    timings["ease"] = round(time.perf_counter() - t0, 2)
    out: dict[str, Any] = {}
    for name, (recalls, share) in served.items():
        out[name] = recalls.summary(k) | {"personalized": share}
        out[name]["vs_ease"] = {  # per customer, served minus EASE (lambda 500)
            f"recall@{k}": paired_difference(recalls.every, reference.every),
            f"recall@{k}_new": paired_difference(recalls.new, reference.new),
        }
    components = manifest["components"]
    return {
        "dataset": "online-retail",
        "cutoff": RETAIL_CUTOFF,
        "k": k,
        **out,
        "ease": ease[f"{EASE_L2:g}"],
        "ease_grid": ease,
        "build": {
            "version": manifest["version"],
            "timings_s": manifest["timings_s"],
            "bots": manifest.get("bots"),
            "histories": components.get("feed/histories", {}).get("users", 0),
            "feed_fusion": components.get("feed/fusion", {}).get("weights"),
        },
        "timings_s": timings,
    }
