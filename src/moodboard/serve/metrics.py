"""Prometheus metrics of one server: requests, latency per surface, events, artifact version."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Latency buckets in seconds, dense where the targets are (5-50 ms).
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25,
           0.5, 1.0, 2.5, 5.0)  # fmt: skip


class _VersionInfo(Collector):
    """``moodboard_artifact_info{version=...} 1`` read from one attribute at scrape time.

    Setting the version is one attribute assignment, so the loader thread and ``/metrics``
    never race: a scrape sees the old version or the new one, never both or neither.
    """

    def __init__(self) -> None:
        self.version: str | None = None

    def collect(self) -> Iterator[Metric]:
        version = self.version
        info = GaugeMetricFamily(
            "moodboard_artifact_info",
            "The live artifact version (value 1 on the live version's label).",
            labels=["version"],
        )
        if version is not None:
            info.add_metric([version], 1.0)
        yield info


class ServerMetrics:
    """The metrics of one app, in their own registry (several apps may live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "moodboard_requests",
            "HTTP requests by surface (route) and status code.",
            ["surface", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "moodboard_request_seconds",
            "Request latency by surface (route).",
            ["surface"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "moodboard_events_accepted",
            "Events durably appended to the write-ahead log, by origin.",
            ["origin"],
            registry=self.registry,
        )
        self._artifact = _VersionInfo()
        self.registry.register(self._artifact)
        self.impressions_dropped = Counter(
            "moodboard_impressions_dropped",
            "Impression events of served pages that could not be logged.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "moodboard_artifact_reloads", "Artifact swaps since start.", registry=self.registry
        )
        self.load_failures = Counter(
            "moodboard_artifact_load_failures",
            "Artifact versions that failed to load (the old version kept serving).",
            registry=self.registry,
        )

    def observe(self, surface: str, status: int, seconds: float) -> None:
        """Count one request."""
        self.requests.labels(surface, str(status)).inc()
        self.latency.labels(surface).observe(seconds)

    def set_version(self, version: str | None) -> None:
        """Mark the live artifact version (thread-safe: one atomic assignment)."""
        self._artifact.version = version

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
