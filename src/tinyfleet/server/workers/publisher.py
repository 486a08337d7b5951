"""The MQTT side of publishing: retained QoS 1 messages out through the server's link, each batch waited for,
counted, and stamped for the retained guard. What to publish is decided in services/publishing.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tinyfleet.server.metrics import Metrics
from tinyfleet.server.services.publishing import Kind
from tinyfleet.server.workers.mqtt_link import MqttLink


class Publisher:
    """services.publishing.Outbox over an MqttLink."""

    def __init__(self, link: MqttLink, metrics: Metrics, after_publish: Callable[[], None] = lambda: None) -> None:
        self.link, self.metrics = link, metrics
        self._after_publish = after_publish  # the retained guard's stamp (workers/retained_guard.py)

    def retained(self, messages: Iterable[tuple[str, bytes]], kind: Kind) -> int:
        infos = [self.link.publish(topic, payload, retain=True, wait=False) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(60)
        self.metrics.publishes.labels(kind).inc(len(infos))
        return len(infos)

    def stamp(self) -> None:
        self._after_publish()

    @property
    def connected(self) -> bool:
        return self.link.connected
