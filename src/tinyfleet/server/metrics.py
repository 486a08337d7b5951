"""Prometheus metrics. Counters are bumped by ingest; fleet gauges are read from the database per scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _FleetCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, dict[str, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        snap = self._read()
        dev = GaugeMetricFamily("tinyfleet_devices", "Registered devices by presence", labels=["presence"])
        for k, v in snap.get("devices", {}).items():
            dev.add_metric([k], v)
        yield dev
        ro = GaugeMetricFamily("tinyfleet_rollouts", "Rollouts by state", labels=["state"])
        for k, v in snap.get("rollouts", {}).items():
            ro.add_metric([k], v)
        yield ro


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reports = Counter("tinyfleet_reports", "Device state reports received", ["result"], registry=self.registry)
        self.telemetry = Counter(
            "tinyfleet_telemetry_messages", "Telemetry messages received", ["result"], registry=self.registry
        )
        self.malformed = Counter(
            "tinyfleet_malformed_messages", "Device messages dropped as malformed", ["kind"], registry=self.registry
        )
        self.rejected = Counter(
            "tinyfleet_rejected_messages",
            "Device messages dropped after an unexpected error storing them (logged with their payload)",
            ["kind"],
            registry=self.registry,
        )
        self.ingest_waits = Counter(
            "tinyfleet_ingest_database_waits",
            "Times ingest kept a batch unacknowledged because the database was unavailable",
            registry=self.registry,
        )
        self.ingest_lag = Gauge(
            "tinyfleet_ingest_lag_seconds",
            "Seconds between a device's timestamp and the server persisting the message (last message)",
            registry=self.registry,
        )
        self.publishes = Counter(
            "tinyfleet_mqtt_publishes", "Messages the server published", ["kind"], registry=self.registry
        )

    def attach_fleet(self, read: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.registry.register(_FleetCollector(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)
