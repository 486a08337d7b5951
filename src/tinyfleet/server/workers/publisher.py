"""The MQTT side of publishing: retained QoS 1 messages out through the server's link, each batch waited for,
counted, and stamped for the retained guard. What to publish is decided in services/publishing.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from tinyfleet.server.metrics import Metrics
from tinyfleet.server.services.publishing import Kind
from tinyfleet.server.workers.mqtt_link import LinkError, MqttLink

ACK_TIMEOUT_S = 60.0


class Publisher:
    """services.publishing.Outbox over an MqttLink."""

    def __init__(self, link: MqttLink, metrics: Metrics, after_publish: Callable[[], None] = lambda: None) -> None:
        self.link, self.metrics = link, metrics
        self._after_publish = after_publish  # the retained guard's stamp (workers/retained_guard.py)

    def retained(self, messages: Iterable[tuple[str, bytes]], kind: Kind) -> int:
        infos = [self.link.publish(topic, payload, retain=True, wait=False) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(ACK_TIMEOUT_S)
            if not info.is_published():  # wait_for_publish returns quietly when it times out
                raise LinkError(f"the broker did not acknowledge a {kind} publication within {ACK_TIMEOUT_S:g} s")
        self.metrics.publishes.labels(kind).inc(len(infos))
        return len(infos)

    def stamp(self) -> None:
        self._after_publish()

    @property
    def connected(self) -> bool:
        return self.link.connected
