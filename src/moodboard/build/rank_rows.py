"""The multi-head ranker's training rows: labelled impressions with point-in-time features.

One row per shown item (``pipelines.labels.impression_heads``: the five head labels, the
surface, query, position and propensity, and the logged ``props``), joined to the features
of ``rank.signals`` computed by the same Ibis expression on DuckDB or Spark from the
actions strictly before the impression (``pipelines.labels.head_actions``), then the
retrieval sources and scores parsed into columns (``rank.rows.retrieval_columns``).

Bot filtering goes in one place: ``exclude_users`` (a table with a ``user_id`` column) drops
the bots' impressions and their actions from every feature, before anything is computed.
A log without impressions yields no rows and a ``reason`` for the manifest (the rank stage
keeps ``rank/noop``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from moodboard.config import BotsConfig, LabelsConfig
from moodboard.data import columns as C
from moodboard.data.records import EventType
from moodboard.ingest import Workspace
from moodboard.pipelines.bots import flag_bots
from moodboard.pipelines.engine import Engine, connect
from moodboard.pipelines.interactions import fetch
from moodboard.pipelines.labels import HEADS_SCHEMA, LABELS_KEY, head_actions, impression_heads
from moodboard.rank.rows import retrieval_columns
from moodboard.rank.signals import HISTORY_AGES, HISTORY_ITEMS, HISTORY_TYPES, Signals, signals_ibis

_log = logging.getLogger(__name__)

_LISTS: Final = {
    HISTORY_ITEMS: pa.list_(pa.string()),
    HISTORY_TYPES: pa.list_(pa.string()),
    HISTORY_AGES: pa.list_(pa.float64()),
}


@dataclass(frozen=True)
class RankerRows:
    """The training rows, or why there are none.

    Attributes
    ----------
    rows
        One row per (request_id, item_id), sorted by that key (``rows_schema`` columns, then
        ``sources`` and the ``score:<name>`` columns).
    reason
        Why there are no rows (None when there are).
    """

    rows: pa.Table
    reason: str | None = None


def rows_schema(signals: Signals) -> pa.Schema:
    """The columns of the rows before the retrieval columns: ``HEADS_SCHEMA`` and the features."""
    counts = [(name, pa.int64()) for name in signals.count_names]
    return pa.schema([*HEADS_SCHEMA, *counts, *_LISTS.items()])


def ranker_rows(
    events: ir.Table,
    labels: LabelsConfig | None = None,
    signals: Signals | None = None,
    *,
    as_of: datetime | None = None,
    exclude_users: ir.Table | None = None,
) -> RankerRows:
    """The multi-head ranker's rows of an event log, on the backend ``events`` is bound to.

    Parameters
    ----------
    events
        The event log (``EVENT_SCHEMA`` columns).
    labels
        The label window; default ``LabelsConfig()``.
    signals
        The features; default ``Signals.default()``.
    as_of
        Rows as known at this instant (``impression_heads``): impressions whose window is still
        open are left out. Features only ever read actions before their impression.
    exclude_users
        The users to leave out entirely (bots: the spam filter's output goes here).

    Returns
    -------
    RankerRows
        The rows (history lists empty, never null, when the user had no earlier action), or
        none and the reason.
    """
    sig = signals or Signals.default()
    heads = impression_heads(events, labels, as_of=as_of, exclude_users=exclude_users)
    acts = head_actions(events, exclude_users)
    schema = rows_schema(sig)
    rows = fetch(signals_ibis(heads, acts, sig), schema, LABELS_KEY)
    if rows.num_rows == 0:
        return RankerRows(retrieval_columns(rows), _no_rows_reason(events))
    for name, typ in _LISTS.items():
        col = rows.column(name)
        filled = pc.if_else(col.is_null(), pa.scalar([], typ), col)
        rows = rows.set_column(rows.schema.get_field_index(name), name, filled)
    rows = retrieval_columns(rows)
    _log.info(
        "%d ranker rows (%d users); positives: %s",
        rows.num_rows,
        len(pc.unique(rows.column(C.USER_ID))),
        {h: pc.sum(rows.column(h)).as_py() for h in HEADS_SCHEMA.names[-5:]},
    )
    return RankerRows(rows)


def workspace_ranker_rows(
    ws: Workspace,
    engine: Engine = "duckdb",
    labels: LabelsConfig | None = None,
    signals: Signals | None = None,
    bots: BotsConfig | None = None,
) -> RankerRows:
    """:func:`ranker_rows` of a workspace's committed event log, bots left out.

    Parameters
    ----------
    ws
        The workspace.
    engine
        ``"duckdb"`` or ``"spark"``.
    labels, signals
        As for :func:`ranker_rows`.
    bots
        The rules whose flagged accounts are left out (``pipelines.bots``; the build's
        ``[bots]``); default ``BotsConfig()``.

    Returns
    -------
    RankerRows
        The rows, or none and the reason (also when the workspace has no events at all).

    Raises
    ------
    ImportError
        If Spark is asked for and pyspark is not installed.
    """
    sig = signals or Signals.default()
    if not ws.events.files():
        empty = retrieval_columns(rows_schema(sig).empty_table())
        return RankerRows(empty, "the workspace has no events: the rank stage keeps rank/noop")
    events = connect(engine).read_parquet(ws.events.glob())
    return ranker_rows(events, labels, sig, exclude_users=flag_bots(events, bots))


def _no_rows_reason(events: ir.Table) -> str:
    """Why a log gave no rows: no impression at all, or every one left out."""
    imp = events.filter(events[C.TYPE] == EventType.IMPRESSION.value)
    n = int(imp.filter(imp[C.REQUEST_ID].notnull() & imp[C.ITEM_ID].notnull()).count().execute())
    if n == 0:
        return (
            "the event log has no impressions with a request_id and an item_id (e.g. purchases "
            "only): the multi-head ranker has nothing to learn from, the rank stage keeps "
            "rank/noop; serve pages (or simulate) to log impressions"
        )
    return (
        f"all {n} impressions of the event log were left out (their users were filtered, or "
        "their label windows are still open): the rank stage keeps rank/noop"
    )
