"""Train / validation / test splits of interactions: by time and leave-last-out (Ibis jobs).

Both add a ``split`` column to the interactions (``train``, ``validation`` or ``test``); the
order of a user's interactions is (ts, event_id), so ties fall the same way on every engine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import columns as C
from moodboard.pipelines.interactions import (
    INTERACTIONS_KEY,
    INTERACTIONS_SCHEMA,
    US,
    datetime_us,
    epoch_us,
    fetch,
)

#: The output column and its values.
SPLIT: Final = "split"
TRAIN: Final = "train"
VALIDATION: Final = "validation"
TEST: Final = "test"

SPLIT_SCHEMA: Final = INTERACTIONS_SCHEMA.append(pa.field(SPLIT, pa.string()))


class SplitsConfig(BaseModel):
    """Where the splits fall.

    Parameters
    ----------
    cutoff
        Time split: interactions at or after this UTC time are ``test``. Default: ``test_days``
        before the newest interaction.
    test_days
        The length of the test period when ``cutoff`` is not given.
    min_interactions
        Leave-last-out: users with fewer interactions are all ``train``.
    """

    model_config = ConfigDict(extra="forbid")

    cutoff: datetime | None = None
    test_days: float = Field(default=1.0, gt=0)
    min_interactions: int = Field(default=3, ge=1)


def _with_us(t: ir.Table) -> ir.Table:
    return t if US in t.columns else t.mutate(**{US: epoch_us(t[C.TS])})


def time_split(interactions: ir.Table, config: SplitsConfig | None = None) -> ir.Table:
    """Interactions before the cutoff are ``train``, the others ``test``.

    Returns
    -------
    ir.Table
        The interactions (``INTERACTIONS_SCHEMA``) plus ``split``.
    """
    cfg = config or SplitsConfig()
    t = _with_us(interactions)
    if cfg.cutoff is not None:
        split = ibis.ifelse(t[US] >= datetime_us(cfg.cutoff), TEST, TRAIN)
    else:  # a one-row table, not a window over all rows (one partition on Spark)
        newest = t.aggregate(_newest=t[US].max())
        t = t.cross_join(newest)
        split = ibis.ifelse(t[US] >= t._newest - round(cfg.test_days * 86_400_000_000), TEST, TRAIN)
    return t.select(*INTERACTIONS_SCHEMA.names, **{SPLIT: split})


def leave_last_out(interactions: ir.Table, config: SplitsConfig | None = None) -> ir.Table:
    """Per user: the last interaction is ``test``, the one before ``validation``, others ``train``.

    Users with fewer than ``min_interactions`` interactions are all ``train``.

    Returns
    -------
    ir.Table
        The interactions (``INTERACTIONS_SCHEMA``) plus ``split``.
    """
    cfg = config or SplitsConfig()
    t = _with_us(interactions)
    user = ibis.window(group_by=t[C.USER_ID])
    newest = ibis.window(
        group_by=t[C.USER_ID], order_by=[ibis.desc(t[US]), ibis.desc(t[C.EVENT_ID])]
    )
    t = t.mutate(_back=ibis.row_number().over(newest), _n=t[C.EVENT_ID].count().over(user))
    split = ibis.cases(
        (t._n < cfg.min_interactions, TRAIN),
        (t._back == 0, TEST),
        (t._back == 1, VALIDATION),
        else_=TRAIN,
    )
    return t.select(*INTERACTIONS_SCHEMA.names, **{SPLIT: split})


def time_split_table(interactions: ir.Table, config: SplitsConfig | None = None) -> pa.Table:
    """Run :func:`time_split`; ``SPLIT_SCHEMA`` sorted by (user_id, ts, event_id)."""
    return fetch(time_split(interactions, config), SPLIT_SCHEMA, INTERACTIONS_KEY)


def leave_last_out_table(interactions: ir.Table, config: SplitsConfig | None = None) -> pa.Table:
    """Run :func:`leave_last_out`; ``SPLIT_SCHEMA`` sorted by (user_id, ts, event_id)."""
    return fetch(leave_last_out(interactions, config), SPLIT_SCHEMA, INTERACTIONS_KEY)
