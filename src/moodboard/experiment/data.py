"""An experiment's data, read once from a workspace's event log: who was exposed to which arm
and when, their per-day counts after exposure and before the start, and their segments."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import ibis
import numpy as np
import pandas as pd

from moodboard.config import Settings
from moodboard.data import columns as C
from moodboard.experiment.metrics import (
    ARM,
    COUNTS,
    DAY,
    Metric,
    devices,
    event_log,
    exposures,
    favourite_category,
    first_seen,
    merge_days,
    totals,
    user_days,
)
from moodboard.experiment.spec import ExperimentSpec
from moodboard.ingest import Workspace
from moodboard.pipelines.engine import connect

_log = logging.getLogger(__name__)
_DAY_US = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def day_date(day: int) -> str:
    """The ISO date of an epoch day."""
    return (_EPOCH + timedelta(days=int(day))).date().isoformat()


@dataclass
class ExperimentData:
    """The exposed shoppers of one experiment and their counts.

    Attributes
    ----------
    users, arms, exposed_day
        One entry per exposed shopper (contaminated ones left out).
    post, pre
        Per-(shopper, day) counts after exposure, and over the pre-period.
    returning
        Whether each shopper had any event before the experiment's start.
    category
        Each shopper's favourite category before the start ("" for none).
    device
        The device each shopper's pages were served to most, when pages log one ("" else).
    """

    spec: ExperimentSpec
    surfaces: tuple[str, ...]
    start: datetime
    end: datetime
    users: np.ndarray
    arms: np.ndarray
    exposed_day: np.ndarray
    contaminated: int
    post: pd.DataFrame
    pre: pd.DataFrame
    returning: np.ndarray
    category: np.ndarray
    device: np.ndarray

    def days(self) -> list[int]:
        """The experiment's days with an exposure, in order."""
        return sorted({int(d) for d in self.exposed_day}) if len(self.users) else []

    def values(
        self, metric: Metric, until_day: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None, np.ndarray]:
        """``(y, x, pre_y, pre_x, mask)``: each shopper's metric numerator and denominator
        (None for a mean metric) over the days up to ``until_day`` (all: None), their
        pre-period values, and ``mask``: the shoppers exposed by then (the arrays are theirs)."""
        mask = np.ones(len(self.users), bool)
        post = self.post
        if until_day is not None:
            mask = self.exposed_day <= until_day
            post = post[post[DAY] <= until_day]
        users = self.users[mask]
        now, before = totals(post, users), totals(self.pre, users)
        y, pre_y = now[metric.numerator], before[metric.numerator]
        if metric.denominator is None:
            return y, None, pre_y, None, mask
        return y, now[metric.denominator], pre_y, before[metric.denominator], mask


def load_data(
    ws: Workspace,
    spec: ExperimentSpec,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    engine: Literal["duckdb", "spark"] = "duckdb",
) -> ExperimentData:
    """Read an experiment's data from the workspace's event log.

    The window runs from the experiment's ``start`` (default: its first exposure) to its
    ``stop`` or ``as_of`` (default now), whichever is first.
    """
    backend = connect(engine)
    surfaces = spec.affected_surfaces() or ("search", "related", "feed", "board", "visual")
    end = min(t for t in (spec.stop, as_of or datetime.now(UTC)) if t is not None)
    events = event_log(backend, ws)
    if events is None:
        return _empty(spec, surfaces, spec.start or end, end)
    products = ibis.memtable(ws.products_table().select([C.ID, C.PRICE, C.CATEGORY]))
    since = spec.start or datetime(1970, 1, 1, tzinfo=UTC)
    exp = exposures(events, spec, surfaces, since, end).to_pandas()
    if exp.empty:
        return _empty(spec, surfaces, spec.start or end, end)
    mixed = exp["arms"] > 1
    exp = exp[~mixed].sort_values(C.USER_ID).reset_index(drop=True)
    start = spec.start or datetime.fromtimestamp(exp["exposed_us"].min() / 1e6, UTC)
    users_t = ibis.memtable(exp[[C.USER_ID, "exposed_us"]])
    post = merge_days(user_days(events, products, users_t, surfaces, start, end))
    pre_start = start - timedelta(days=settings.experiment.pre_period_days)
    plain = users_t.select(C.USER_ID)
    pre = merge_days(user_days(events, products, plain, surfaces, pre_start, start))
    seen = first_seen(events, plain).to_pandas().set_index(C.USER_ID)["first_us"]
    fav = favourite_category(events, products, plain, start).to_pandas()
    fav = fav.set_index(C.USER_ID)[C.CATEGORY]
    dev = devices(events, plain).to_pandas().set_index(C.USER_ID)["device"]
    users = exp[C.USER_ID].to_numpy(str)
    first = seen.reindex(users).to_numpy(np.float64)
    return ExperimentData(
        spec=spec,
        surfaces=tuple(surfaces),
        start=start,
        end=end,
        users=users,
        arms=exp[ARM].to_numpy(str),
        exposed_day=(exp["exposed_us"].to_numpy(np.int64) // _DAY_US),
        contaminated=int(mixed.sum()),
        post=post,
        pre=pre,
        returning=first < (start - _EPOCH).total_seconds() * 1e6,
        category=fav.reindex(users).fillna("").to_numpy(str),
        device=dev.reindex(users).fillna("").to_numpy(str),
    )


def _empty(spec: ExperimentSpec, surfaces: tuple[str, ...], start: datetime, end: datetime):
    frame = pd.DataFrame({C.USER_ID: [], DAY: [], **{c: [] for c in COUNTS}})
    none = np.empty(0, dtype=str)
    return ExperimentData(
        spec,
        surfaces,
        start,
        end,
        none,
        none,
        np.empty(0, np.int64),
        0,
        frame,
        frame,
        np.empty(0, bool),
        none,
        none,
    )
