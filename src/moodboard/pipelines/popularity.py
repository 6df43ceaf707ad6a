"""Item popularity from the event log: action-weighted, time-decayed counts (an Ibis job)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from moodboard.data import columns as C


def popularity(
    events: ir.Table, weights: Mapping[str, float], half_life_days: float = 7.0
) -> ir.Table:
    """``item_id, score``: sum of action weights, halved every ``half_life_days`` before the
    newest event of the log."""
    latest = events[C.TS].max()
    w = ibis.cases(*((events[C.TYPE] == t, float(v)) for t, v in weights.items()), else_=0.0)
    aged = events.filter(events[C.ITEM_ID].notnull()).mutate(
        weight=w, age_days=(latest.epoch_seconds() - events[C.TS].epoch_seconds()) / 86_400.0
    )
    decay = (-(math.log(2) / half_life_days) * aged.age_days).exp()
    return aged.group_by(C.ITEM_ID).aggregate(score=(aged.weight * decay).sum())


def popularity_table(
    backend: ibis.BaseBackend,
    events_glob: str,
    weights: Mapping[str, float],
    half_life_days: float = 7.0,
) -> pa.Table:
    """Run ``popularity`` over Parquet event parts on a backend."""
    events = backend.read_parquet(events_glob)
    return popularity(events, weights, half_life_days).to_pyarrow()
