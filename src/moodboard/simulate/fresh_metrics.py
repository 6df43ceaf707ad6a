"""What catalog growth measures, from the logged events: how soon new products are clicked and
how much of the catalog the shoppers reach.

``GrowthOutcome.of`` reads an event table (one DuckDB query): for each released product, its
first click at or after its release (before the run's end), and for each product in the
catalog at the end, whether it had an impression and a click in the measured window (the days
through the engine), bots left out. Its ``metrics``:

- ``new_items``: the products released during the run;
- ``new_clicked_share``: the share of them clicked by the end;
- ``median_days_to_first_click``: the median time from release to first click, in simulated
  days, over the clicked ones (None if none was);
- ``new_days_to_first_click``: the mean of that time with a never-clicked product counted at
  its time from release to the end (a restricted mean, every new product counted);
- ``coverage_impressions``, ``coverage_clicks``: the share of the catalog's products with at
  least one impression, one click.

Arms release the same products on the same days, so ``paired`` compares two arms product by
product (``compare.PairedStats``: the paired t interval, products as the units; shoppers see
several products, so the products' outcomes are not independent and the interval is
optimistic).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.ingest import Workspace
from moodboard.ingest.workspace import connect_memory
from moodboard.simulate.compare import PairedStats

#: The per-product metrics ``paired`` compares, with the arrays they average.
PAIRED = (
    "new_clicked_share",
    "new_days_to_first_click",
    "coverage_impressions",
    "coverage_clicks",
)
_DAY_US = 86_400e6

_FIRST_CLICK = f"""
SELECT r.item_id, min(e.{C.TS}) AS first_click
FROM released r LEFT JOIN ev e
  ON e.{C.ITEM_ID} = r.item_id AND e.{C.TYPE} = 'click' AND e.{C.TS} >= r.released
  AND e.{C.TS} < $until AND e.{C.USER_ID} NOT IN (SELECT user_id FROM skipped)
GROUP BY r.item_id
"""
_REACHED = f"""
SELECT {C.ITEM_ID} AS item_id, bool_or({C.TYPE} = 'impression') AS impressed,
       bool_or({C.TYPE} = 'click') AS clicked
FROM ev
WHERE {C.TS} >= $since AND {C.TS} < $until AND {C.ITEM_ID} IS NOT NULL
  AND {C.USER_ID} NOT IN (SELECT user_id FROM skipped)
GROUP BY {C.ITEM_ID}
"""


@dataclass(frozen=True)
class GrowthOutcome:
    """Per product, what the shoppers did with it (see the module docstring).

    Attributes
    ----------
    catalog
        The ids of the catalog's products at the end, sorted.
    impressed, clicked
        Per ``catalog`` product, an impression / a click in the window.
    new
        The released products' ids, sorted.
    days_to_click
        Per ``new`` product, the days from its release to its first click (NaN: none).
    days_left
        Per ``new`` product, the days from its release to the end.
    """

    catalog: np.ndarray
    impressed: np.ndarray
    clicked: np.ndarray
    new: np.ndarray
    days_to_click: np.ndarray
    days_left: np.ndarray

    @classmethod
    def of(
        cls,
        events: pa.Table,
        catalog: Iterable[str],
        released: Mapping[str, datetime],
        since: datetime,
        until: datetime,
        skip_users: Iterable[str] = (),
    ) -> GrowthOutcome:
        """The outcome of an event table (``user_id, item_id, type, ts``; naive UTC times).

        Parameters
        ----------
        catalog
            The products in the catalog at the end.
        released
            Each released product's release time.
        since, until
            The window of the coverage (first clicks: from the release to ``until``).
        skip_users
            Accounts left out (the bots).
        """
        ids = np.array(sorted(map(str, catalog)), dtype=object)
        new = np.array(sorted(released), dtype=object)
        rel = pa.table(
            {
                "item_id": pa.array(new.tolist(), pa.string()),
                "released": pa.array([released[i] for i in new], pa.timestamp("us")),
            }
        )
        skipped = pa.table({"user_id": pa.array(sorted(set(skip_users)), pa.string())})
        params = {"until": until}
        with connect_memory() as con:
            for name, t in (("ev", events), ("released", rel), ("skipped", skipped)):
                con.register(name, t)
            first = con.execute(_FIRST_CLICK, params).to_arrow_table()
            reached = con.execute(_REACHED, params | {"since": since}).to_arrow_table()
        first_at = dict(zip(*(first.column(c).to_pylist() for c in range(2)), strict=True))
        days = [
            np.nan if first_at[i] is None else (first_at[i] - released[i]) / timedelta(days=1)
            for i in new
        ]
        left = [(until - released[i]) / timedelta(days=1) for i in new]
        hit = {r["item_id"]: r for r in reached.to_pylist()}
        impressed = np.array([bool(hit.get(i, {}).get("impressed")) for i in ids], dtype=bool)
        clicked = np.array([bool(hit.get(i, {}).get("clicked")) for i in ids], dtype=bool)
        return cls(ids, impressed, clicked, new, np.array(days, dtype=np.float64),
                   np.array(left, dtype=np.float64))  # fmt: skip

    @classmethod
    def of_workspace(
        cls,
        ws: Workspace,
        released: Mapping[str, datetime],
        since: datetime,
        until: datetime,
        skip_users: Iterable[str] = (),
    ) -> GrowthOutcome:
        """The outcome of the workspace's event files and its catalog."""
        files = [str(f) for f in ws.events.files()]
        cols = f"{C.USER_ID}, {C.ITEM_ID}, {C.TYPE}, {C.TS}"
        start = min([since, *released.values()])
        with connect_memory() as con:
            events = con.execute(
                f"SELECT {cols} FROM read_parquet(?, hive_partitioning = false, "
                f"union_by_name = true) WHERE {C.TYPE} IN ('impression', 'click') AND {C.TS} >= ?",
                [files, start],
            ).to_arrow_table()
        catalog = ws.products_table().column(C.ID).to_pylist()
        return cls.of(events, catalog, released, since, until, skip_users)

    def per_item(self) -> dict[str, np.ndarray]:
        """The per-product values the ``PAIRED`` metrics average."""
        clicked = ~np.isnan(self.days_to_click)
        return {
            "new_clicked_share": clicked.astype(np.float64),
            "new_days_to_first_click": np.where(clicked, self.days_to_click, self.days_left),
            "coverage_impressions": self.impressed.astype(np.float64),
            "coverage_clicks": self.clicked.astype(np.float64),
        }

    def metrics(self) -> dict[str, Any]:
        """The module docstring's metrics."""
        per = self.per_item()
        clicked = self.days_to_click[~np.isnan(self.days_to_click)]
        out: dict[str, Any] = {"new_items": len(self.new)}
        out |= {m: float(v.mean()) if len(v) else 0.0 for m, v in per.items()}
        out["median_days_to_first_click"] = float(np.median(clicked)) if len(clicked) else None
        return out

    def summary(self) -> str:
        """One line."""
        m = self.metrics()
        median = m["median_days_to_first_click"]
        return (
            f"{m['new_items']} new products, {m['new_clicked_share']:.1%} clicked"
            + (f" (median {median:.2f} days after release)" if median is not None else "")
            + f", coverage {m['coverage_impressions']:.1%} shown, "
            f"{m['coverage_clicks']:.1%} clicked"
        )

    def paired(self, control: GrowthOutcome) -> dict[str, PairedStats]:
        """Per ``PAIRED`` metric, this outcome minus ``control``, product by product.

        Raises
        ------
        ConfigError
            If the two did not release or end with the same products.
        """
        if list(self.new) != list(control.new) or list(self.catalog) != list(control.catalog):
            raise ConfigError(
                "Paired product metrics need arms that released and ended with the same "
                f"products. Got {len(self.new)} and {len(control.new)} released, "
                f"{len(self.catalog)} and {len(control.catalog)} in the catalog."
            )
        a, b = self.per_item(), control.per_item()
        return {m: PairedStats.of(a[m], b[m]) for m in PAIRED}


def growth_report(outcomes: Mapping[str, GrowthOutcome], control: str) -> dict[str, Any]:
    """``{"arms": {arm: metrics}, "diffs": {"<arm> - <control>": {metric: {"estimate",
    "ci"}}}}`` (an interval is None with fewer than 2 products)."""
    diffs = {}
    for arm, o in outcomes.items():
        if arm == control:
            continue
        pairs = o.paired(outcomes[control])
        diffs[f"{arm} - {control}"] = {
            m: p.as_dict() if p.n >= 2 else {"estimate": p.mean, "ci": None}
            for m, p in pairs.items()
        }
    return {"arms": {a: o.metrics() for a, o in outcomes.items()}, "diffs": diffs}
