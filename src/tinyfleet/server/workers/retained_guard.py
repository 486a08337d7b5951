"""Notices that the broker lost the server's retained messages, so they can be published again.

Mosquitto saves retained messages every few seconds; a broker that crashes (and comes back) while the server
keeps running loses what it had not saved, and nothing on the connection says so. After every batch of
retained publications the server therefore publishes one more retained message, a marker (its run id and a
generation number), on a topic only it may use. QoS 1 messages from one client are stored in order, so a
broker that still holds the latest marker holds everything published before it. After each reconnect the
server's subscription brings the marker back: a missing or older marker means state was lost.

Marker payload: 8 random bytes (this server run) then the generation as u64 little-endian.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable

log = logging.getLogger("tinyfleet.server.retained_guard")

MARKER_WAIT_S = 3.0  # a retained marker arrives right after SUBACK; none by then means the broker has none


class RetainedGuard:
    def __init__(
        self,
        topic: str,
        publish: Callable[[str, bytes], None],
        on_lost: Callable[[], None],
        wait_s: float = MARKER_WAIT_S,
    ) -> None:
        self.topic = topic
        self._publish, self._on_lost, self._wait_s = publish, on_lost, wait_s
        self._run_id = secrets.token_bytes(8)
        self._generation = 0
        self._lock = threading.Lock()
        self._checking = False
        self._timer: threading.Timer | None = None
        self.repairs = 0

    def _marker(self) -> bytes:
        return self._run_id + self._generation.to_bytes(8, "little")

    def stamp(self) -> None:
        """Call after a batch of retained publications has been acknowledged."""
        with self._lock:
            self._generation += 1
            payload = self._marker()
        self._publish(self.topic, payload)

    def reconnected(self) -> None:
        """The link connected again: check the marker comes back."""
        with self._lock:
            if self._generation == 0:
                return  # nothing published yet by this run: nothing to lose
            self._checking = True
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._wait_s, self._timeout)
            self._timer.daemon = True
            self._timer.start()

    def marker_received(self, payload: bytes) -> None:
        with self._lock:
            if not self._checking:
                return
            self._checking = False
            if self._timer is not None:
                self._timer.cancel()
            intact = payload == self._marker()
        if not intact:
            self._repair("holds an older marker")

    def _timeout(self) -> None:
        with self._lock:
            if not self._checking:
                return
            self._checking = False
        self._repair("holds no marker")

    def _repair(self, why: str) -> None:
        log.warning("broker %s: it lost retained messages; publishing them again", why)
        self.repairs += 1
        threading.Thread(target=self._on_lost, name="republish", daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._checking = False
            if self._timer is not None:
                self._timer.cancel()
