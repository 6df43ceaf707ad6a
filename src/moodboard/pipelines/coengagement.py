"""Co-engagement groups from the event log: sessions and boards (an Ibis job).

A session is a run of one user's engagements with no gap longer than ``gap_minutes``; a board
group is the items saved to one board. Complementary categories are learned from these groups
(``moodboard.surfaces.complements``).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from moodboard.data import columns as C

#: The output columns: a group key (``s:<user>:<n>`` or ``b:<board>``) and an external item id.
GROUP = "group"


def coengagement(events: ir.Table, actions: Sequence[str], gap_minutes: float = 30.0) -> ir.Table:
    """``group, item_id``: distinct items per session (of ``actions``) and per board (saves)."""
    e = events.filter(events[C.TYPE].isin(list(actions)) & events[C.ITEM_ID].notnull())
    e = e.select(C.USER_ID, C.TS, C.ITEM_ID, C.TYPE, C.BOARD_ID)
    w = ibis.window(group_by=e[C.USER_ID], order_by=e[C.TS])
    prev = e[C.TS].lag().over(w)
    gap = e[C.TS].epoch_seconds() - prev.epoch_seconds()
    e = e.mutate(_new=ibis.ifelse(prev.isnull() | (gap > gap_minutes * 60.0), 1, 0))
    e = e.mutate(_session=e._new.cumsum(group_by=e[C.USER_ID], order_by=e[C.TS]))
    sessions = e.select(
        **{
            GROUP: ibis.literal("s:") + e[C.USER_ID] + ":" + e._session.cast("string"),
            C.ITEM_ID: e[C.ITEM_ID],
        }
    )
    saved = e.filter((e[C.TYPE] == "save") & e[C.BOARD_ID].notnull())
    boards = saved.select(
        **{GROUP: ibis.literal("b:") + saved[C.BOARD_ID], C.ITEM_ID: saved[C.ITEM_ID]}
    )
    return sessions.union(boards, distinct=True)


def coengagement_table(
    backend: ibis.BaseBackend,
    events_glob: str,
    actions: Sequence[str],
    gap_minutes: float = 30.0,
) -> pa.Table:
    """Run ``coengagement`` over Parquet event parts on a backend."""
    events = backend.read_parquet(events_glob)
    return coengagement(events, actions, gap_minutes).to_pyarrow()
