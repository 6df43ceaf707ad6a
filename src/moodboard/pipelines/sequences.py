"""Per-user interaction sequences, oldest first, truncated to the last L (an Ibis job).

Lists are built by collecting ``(ts, event_id, item_id, weight)`` structs and sorting them: Spark's
``collect_list`` has no order and Ibis cannot order it there, while sorting structs compares
field by field on both engines, so ties on ``ts`` are broken by ``event_id`` everywhere.
"""

from __future__ import annotations

from typing import Final

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from moodboard.data import columns as C
from moodboard.pipelines.interactions import US, WEIGHT, epoch_us, fetch

#: Output columns.
ITEM_IDS: Final = "item_ids"
TIMESTAMPS: Final = "ts"
WEIGHTS: Final = "weights"
LENGTH: Final = "length"

SEQUENCES_SCHEMA: Final = pa.schema(
    [
        (C.USER_ID, pa.string()),
        (ITEM_IDS, pa.list_(pa.string())),
        (TIMESTAMPS, pa.list_(pa.timestamp("us"))),
        (WEIGHTS, pa.list_(pa.float64())),
        (LENGTH, pa.int64()),
    ]
)


class SequencesConfig(BaseModel):
    """How long a sequence may be.

    Parameters
    ----------
    max_length
        Keep each user's last ``max_length`` interactions.
    """

    model_config = ConfigDict(extra="forbid")

    max_length: int = Field(default=50, ge=1)


def sequences(interactions: ir.Table, config: SequencesConfig | None = None) -> ir.Table:
    """``user_id, item_ids, ts, weights, length``: each user's last interactions in time order.

    Parameters
    ----------
    interactions
        The output of :func:`moodboard.pipelines.interactions` (``ts_us`` is used when present).
    config
        The maximum length; default ``SequencesConfig()``.

    Returns
    -------
    ir.Table
        One row per user; lists ordered by (ts, event_id).
    """
    cfg = config or SequencesConfig()
    t = interactions
    if US not in t.columns:
        t = t.mutate(**{US: epoch_us(t[C.TS])})
    newest = ibis.window(
        group_by=t[C.USER_ID], order_by=[ibis.desc(t[US]), ibis.desc(t[C.EVENT_ID])]
    )
    t = t.mutate(_back=ibis.row_number().over(newest))
    t = t.filter(t._back < cfg.max_length)
    step = ibis.struct(
        {"us": t[US], "eid": t[C.EVENT_ID], "item": t[C.ITEM_ID], "ts": t[C.TS], "w": t[WEIGHT]}
    )
    g = t.group_by(C.USER_ID).aggregate(_steps=step.collect())
    steps = g._steps.sort()
    return g.select(
        C.USER_ID,
        **{
            ITEM_IDS: steps.map(lambda s: s.item),
            TIMESTAMPS: steps.map(lambda s: s.ts),
            WEIGHTS: steps.map(lambda s: s.w),
            LENGTH: steps.length().cast("int64"),
        },
    )


def sequences_table(interactions: ir.Table, config: SequencesConfig | None = None) -> pa.Table:
    """Run :func:`sequences` on the backend ``interactions`` is bound to; sorted by user."""
    return fetch(sequences(interactions, config), SEQUENCES_SCHEMA, (C.USER_ID,))
