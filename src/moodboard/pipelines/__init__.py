"""Batch jobs written once as Ibis expressions, run on DuckDB (default) or Spark."""

from moodboard.pipelines.bots import RULES, Bots, account_stats, bots_table, flag_bots
from moodboard.pipelines.coengagement import (
    GraphConfig,
    coengagement,
    coengagement_graph,
    coengagement_graph_table,
    coengagement_table,
)
from moodboard.pipelines.engine import Engine, connect
from moodboard.pipelines.interactions import (
    Interactions,
    InteractionsConfig,
    interactions,
    interactions_table,
    removed_users,
)
from moodboard.pipelines.labels import (
    HEADS,
    HEADS_SCHEMA,
    LABEL,
    LABELS_SCHEMA,
    LabelsConfig,
    head_actions,
    impression_heads,
    impression_labels,
    labels_table,
)
from moodboard.pipelines.popularity import popularity, popularity_table
from moodboard.pipelines.run import OUTPUTS, PipelinesConfig, run_pipelines
from moodboard.pipelines.sequences import SequencesConfig, sequences, sequences_table
from moodboard.pipelines.splits import (
    SplitsConfig,
    leave_last_out,
    leave_last_out_table,
    time_split,
    time_split_table,
)

__all__ = [
    "HEADS",
    "HEADS_SCHEMA",
    "LABEL",
    "LABELS_SCHEMA",
    "OUTPUTS",
    "RULES",
    "Bots",
    "Engine",
    "GraphConfig",
    "Interactions",
    "InteractionsConfig",
    "LabelsConfig",
    "PipelinesConfig",
    "SequencesConfig",
    "SplitsConfig",
    "account_stats",
    "bots_table",
    "coengagement",
    "coengagement_graph",
    "coengagement_graph_table",
    "coengagement_table",
    "connect",
    "flag_bots",
    "head_actions",
    "impression_heads",
    "impression_labels",
    "interactions",
    "interactions_table",
    "labels_table",
    "leave_last_out",
    "leave_last_out_table",
    "popularity",
    "popularity_table",
    "removed_users",
    "run_pipelines",
    "sequences",
    "sequences_table",
    "time_split",
    "time_split_table",
]
