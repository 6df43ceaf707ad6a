"""All engagement pipelines over a workspace's event log, on DuckDB or Spark, in one call."""

from __future__ import annotations

import logging
import time
from typing import Final

import ibis
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from moodboard.config import BotsConfig
from moodboard.data import columns as C
from moodboard.ingest import EVENT_SCHEMA, Workspace
from moodboard.pipelines.bots import BOTS_SCHEMA, flag_bots
from moodboard.pipelines.coengagement import GraphConfig, coengagement_graph_table
from moodboard.pipelines.engine import Engine, connect
from moodboard.pipelines.interactions import (
    INTERACTIONS_KEY,
    INTERACTIONS_SCHEMA,
    REMOVED_SCHEMA,
    InteractionsConfig,
    actions,
    fetch,
    removed_users,
)
from moodboard.pipelines.labels import LABELS_KEY, LABELS_SCHEMA, LabelsConfig, impression_labels
from moodboard.pipelines.sequences import SequencesConfig, sequences_table
from moodboard.pipelines.splits import SplitsConfig, leave_last_out_table, time_split_table

_log = logging.getLogger(__name__)

#: The names of the tables :func:`run_pipelines` returns, in the order they are computed.
OUTPUTS: Final = (
    "interactions",
    "removed_users",
    "sequences",
    "graph",
    "split_time",
    "split_leave_last_out",
    "labels",
    "bots",
)


class PipelinesConfig(BaseModel):
    """The parameters of every engagement pipeline."""

    model_config = ConfigDict(extra="forbid")

    interactions: InteractionsConfig = Field(default_factory=InteractionsConfig)
    sequences: SequencesConfig = Field(default_factory=SequencesConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    splits: SplitsConfig = Field(default_factory=SplitsConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    bots: BotsConfig = Field(default_factory=BotsConfig)


def run_pipelines(
    ws: Workspace,
    engine: Engine | ibis.BaseBackend = "duckdb",
    config: PipelinesConfig | None = None,
) -> dict[str, pa.Table]:
    """Run interactions, removed users, sequences, the co-engagement graph, both splits, the
    impression labels (the impressions of removed users and of flagged bots left out) and the
    accounts flagged as bots (``pipelines.bots``).

    The interactions are computed once (cached on the engine) and feed the other jobs. Every
    table is sorted by a unique key, so the same log gives the same tables on either engine.

    Parameters
    ----------
    ws
        The workspace; its committed event parts are read (``ws.events.glob()``).
    engine
        ``"duckdb"``, ``"spark"`` (``moodboard build --engine spark``) or a connected backend.
    config
        Parameters of the jobs; default ``PipelinesConfig()``.

    Returns
    -------
    dict[str, pa.Table]
        The tables named by ``OUTPUTS``; all empty (with their schemas) if the log is empty.

    Raises
    ------
    ImportError
        If Spark is asked for and pyspark is not installed.
    """
    cfg = config or PipelinesConfig()
    if ws.events.files():
        backend = connect(engine) if isinstance(engine, str) else _in_utc(engine)
        events = backend.read_parquet(ws.events.glob())
    else:
        _log.info("the event log is empty: the pipelines' tables are empty")
        backend = connect("duckdb")
        events = backend.create_table("_mb_no_events", EVENT_SCHEMA.empty_table(), temp=True)
    clock = time.perf_counter()
    acts = actions(events, cfg.interactions).cache()
    bots = removed_users(acts, cfg.interactions)
    kept = acts.anti_join(bots.select(C.USER_ID), C.USER_ID).cache()  # = interactions(...)
    flagged = flag_bots(events, cfg.bots).cache()
    unlabelled = bots.select(C.USER_ID).union(flagged.select(C.USER_ID))
    try:
        out = {
            "interactions": fetch(kept, INTERACTIONS_SCHEMA, INTERACTIONS_KEY),
            "removed_users": fetch(bots, REMOVED_SCHEMA, (C.USER_ID,)),
            "sequences": sequences_table(kept, cfg.sequences),
            "graph": coengagement_graph_table(kept, cfg.graph),
            "split_time": time_split_table(kept, cfg.splits),
            "split_leave_last_out": leave_last_out_table(kept, cfg.splits),
            "labels": fetch(
                impression_labels(events, cfg.labels, exclude_users=unlabelled),
                LABELS_SCHEMA,
                LABELS_KEY,
            ),
            "bots": fetch(flagged, BOTS_SCHEMA, (C.USER_ID,)),
        }
    finally:
        flagged.release()
        kept.release()
        acts.release()
    _log.info(
        "pipelines on %s: %d interactions, %d users removed, %d graph edges, %d labelled "
        "impressions in %.1f s",
        backend.name,
        out["interactions"].num_rows,
        out["removed_users"].num_rows,
        out["graph"].num_rows,
        out["labels"].num_rows,
        time.perf_counter() - clock,
    )
    return out


def _in_utc(backend: ibis.BaseBackend) -> ibis.BaseBackend:
    """Make a given backend's session time zone UTC (the workspace's timestamps are UTC)."""
    if backend.name == "pyspark":
        backend.raw_sql("SET spark.sql.session.timeZone = UTC")
    elif backend.name == "duckdb":
        backend.raw_sql("SET TimeZone = 'UTC'")
    return backend
