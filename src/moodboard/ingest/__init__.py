"""Ingestion: readers, named checks, quarantine, the workspace store and its event log."""

from moodboard.ingest.eventlog import EVENT_SCHEMA, EventLog
from moodboard.ingest.run import (
    CheckResult,
    IngestReport,
    ingest_catalog,
    ingest_events,
    parse_mapping,
    validate,
)
from moodboard.ingest.workspace import Workspace

__all__ = [
    "EVENT_SCHEMA",
    "CheckResult",
    "EventLog",
    "IngestReport",
    "Workspace",
    "ingest_catalog",
    "ingest_events",
    "parse_mapping",
    "validate",
]
