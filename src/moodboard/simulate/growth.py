"""New catalog rows over the simulated days (``simulate.catalog_growth``).

When a run through the engine starts, ``held_out`` of the products that no event in the
workspace names (nor a bot targets) are withheld: deleted from the workspace's products (their
history would otherwise make them old; a run that fails midway leaves the rest withheld).
They are released at the start of days ``release_from .. days - 1`` of the run, evenly in
their order (``order``: a seeded random draw, or the newest by ``created_at`` then id),
through ``ingest_catalog`` as a store adds products, with
``created_at`` the simulated release day. The simulated world keeps every product (the shoppers'
tastes do not depend on the growth) and marks which are in the catalog (``World.available``):
randomized pages, queries and product pages use those only. The engine serves what its
artifact holds, so a released product reaches its pages from the next build (the run builds at
the start of each block of ``rebuild_every`` days, after that day's releases); the run splits
its blocks at the release days so a product never appears before its day. Between its
release and the next build a product is in the catalog but not in the engine's pages (a
product page asked for it is empty).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import CatalogGrowthSettings
from moodboard.data import columns as C
from moodboard.errors import InputError
from moodboard.ingest import Workspace, ingest_catalog
from moodboard.ingest.workspace import PRODUCT_FIELDS, connect_memory
from moodboard.simulate.world import World

_log = logging.getLogger(__name__)


def release_days(count: int, first: int, days: int, config: CatalogGrowthSettings) -> np.ndarray:
    """The release day (from ``simulate.start``) of each of ``count`` withheld products in
    order: evenly over days ``first + release_from .. first + days - 1``.

    Raises
    ------
    InputError
        If ``release_from`` is not below ``days``.
    """
    if config.release_from >= days:
        raise InputError(
            f"simulate.catalog_growth.release_from must be below simulate.days ({days}). Got "
            f"{config.release_from} instead."
        )
    span = days - config.release_from
    return first + config.release_from + (np.arange(count, dtype=np.int64) * span) // max(count, 1)


def _named_items(ws: Workspace) -> set[str]:
    """The item ids the workspace's event files name."""
    files = [str(f) for f in ws.events.files()] if ws.exists() else []
    if not files:
        return set()
    with connect_memory() as con:
        rows = con.execute(
            "SELECT DISTINCT item_id FROM read_parquet(?, hive_partitioning = false, "
            "union_by_name = true) WHERE item_id IS NOT NULL",
            [files],
        ).fetchall()
    return {r[0] for r in rows}


def _pick(products: pa.Table, eligible: np.ndarray, k: int, config: CatalogGrowthSettings,
          seed: int) -> np.ndarray:  # fmt: skip
    """``k`` rows of ``eligible`` in release order."""
    if config.order == "random":
        rng = np.random.default_rng([seed, 7])
        return rng.permutation(eligible)[:k]
    created = products.column(C.CREATED_AT).cast(pa.timestamp("us")).cast(pa.int64())
    t = np.asarray(created.to_numpy(zero_copy_only=False), dtype=np.float64)
    t = np.where(np.isnan(t), -np.inf, t)[eligible]  # unknown dates: oldest
    newest = eligible[np.lexsort((eligible, t))][::-1][:k]  # by date, then row (id order)
    return newest[::-1]  # the oldest of them first


@dataclass
class CatalogGrowth:
    """The withheld products and their release days.

    Attributes
    ----------
    rows
        The withheld products (``PRODUCT_FIELDS``), in release order.
    days
        Each row's release day (from ``simulate.start``).
    items
        Each row's index in the world.
    origin
        ``simulate.start`` (UTC midnight, naive): day ``d`` starts at ``origin + d`` days.
    """

    rows: pa.Table
    days: np.ndarray
    items: np.ndarray
    origin: datetime

    @classmethod
    def withhold(
        cls, ws: Workspace, world: World, config: CatalogGrowthSettings, *, seed: int,
        first: int, days: int, origin: datetime, keep: Iterable[str] = (),
    ) -> CatalogGrowth | None:  # fmt: skip
        """Withhold products from ``ws`` (module docstring) and from ``world``'s catalog;
        None when ``held_out`` is 0. Products in ``keep`` (the bots' targets) stay.

        Raises
        ------
        InputError
            If ``release_from`` is not below ``days``, or the log names every product.
        """
        if config.held_out <= 0:
            return None
        products = ws.products_table()
        ids = products.column(C.ID).to_pylist()
        named = _named_items(ws) | set(keep)
        eligible = np.array([j for j, i in enumerate(ids) if i not in named], dtype=np.int64)
        want = round(config.held_out * len(ids))
        if not len(eligible) or not want:
            raise InputError(
                f"simulate.catalog_growth withholds products no event names: this workspace "
                f"has {len(eligible)} of them (of {len(ids)}) and held_out {config.held_out} "
                "asks for none or more. Start from a workspace without events, or raise held_out."
            )
        if len(eligible) < want:
            _log.warning("catalog growth: %d products withheld of %d asked (the log names the "
                         "others)", len(eligible), want)  # fmt: skip
        rows = _pick(products, eligible, min(want, len(eligible)), config, seed)
        held = products.take(pa.array(rows)).select(list(PRODUCT_FIELDS))
        release = release_days(held.num_rows, first, days, config)
        index = {str(x): i for i, x in enumerate(world.item_ids)}
        items = np.array([index[i] for i in held.column(C.ID).to_pylist()], dtype=np.int64)
        with ws.connect() as con:
            con.register("_held", held.select([C.ID]))
            con.execute(f"DELETE FROM products WHERE {C.ID} IN (SELECT {C.ID} FROM _held)")
            con.unregister("_held")
        available = world.in_catalog().copy()
        available[items] = False
        world.available = available
        _log.info("catalog growth: %d products withheld, released on days %d..%d",
                  len(items), release.min(), release.max())  # fmt: skip
        return cls(held, release, items, origin)

    def released_at(self) -> dict[str, datetime]:
        """Each withheld product's release time (naive UTC), by id."""
        ids = self.rows.column(C.ID).to_pylist()
        when = [self.origin + timedelta(days=int(d)) for d in self.days]
        return dict(zip(ids, when, strict=True))

    def parts(self, block: range) -> list[range]:
        """``block`` split at the release days inside it (a part starts on each)."""
        cuts = sorted({int(d) for d in self.days if block.start < d < block.stop})
        edges = [block.start, *cuts, block.stop]
        return [range(lo, hi) for lo, hi in itertools.pairwise(edges)]

    def release(self, ws: Workspace, day: int, world: World) -> int:
        """Ingest the products released on ``day`` into ``ws`` (``created_at``: the day's
        start) and add them to ``world``'s catalog; returns how many."""
        today = self.days == day
        if not today.any():
            return 0
        rows = self.rows.filter(pa.array(today))
        when = pa.array([self.origin + timedelta(days=day)] * rows.num_rows, pa.timestamp("us"))
        rows = rows.set_column(rows.schema.get_field_index(C.CREATED_AT), C.CREATED_AT, when)
        report = ingest_catalog(ws, [rows], check_images=False)
        if report.quarantined:
            _log.warning("catalog growth: %d released rows quarantined (%s)",
                         report.quarantined, report.quarantine_file)  # fmt: skip
        stored = set(ws_ids(ws, rows.column(C.ID)))
        ok = np.array([i in stored for i in rows.column(C.ID).to_pylist()], dtype=bool)
        assert world.available is not None
        world.available[self.items[today][ok]] = True
        return int(ok.sum())


def ws_ids(ws: Workspace, ids: pa.ChunkedArray) -> list[str]:
    """Which of ``ids`` the workspace's products hold."""
    products = ws.products_table().column(C.ID)
    return pc.filter(ids, pc.is_in(ids, products)).to_pylist()
