"""Ingestion: readers, named checks, quarantine, the workspace store and its event log."""

from moodboard.config import WALConfig
from moodboard.ingest.eventlog import EVENT_SCHEMA, EventLog
from moodboard.ingest.run import (
    CheckResult,
    IngestReport,
    ingest_catalog,
    ingest_events,
    parse_mapping,
    validate,
)
from moodboard.ingest.segments import WALWriteError
from moodboard.ingest.wal import EventWAL, workspace_write_lock
from moodboard.ingest.walread import all_events, pending_on_disk
from moodboard.ingest.walrows import AcceptReport
from moodboard.ingest.workspace import Workspace

__all__ = [
    "EVENT_SCHEMA",
    "AcceptReport",
    "CheckResult",
    "EventLog",
    "EventWAL",
    "IngestReport",
    "WALConfig",
    "WALWriteError",
    "Workspace",
    "all_events",
    "ingest_catalog",
    "ingest_events",
    "parse_mapping",
    "pending_on_disk",
    "validate",
    "workspace_write_lock",
]
