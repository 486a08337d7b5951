"""Asks the embedded broker's identity plugin to apply one identity change, over the server's MQTT session.

After the server replaces or removes an identity's file it publishes `apply <request id> <username>` on
`$CONTROL/tinyfleet/v1`; the plugin drops that client's live session and answers, to this client only, what
the file now holds as the broker's user reads it. `apply` returns that answer, or raises BrokerError when no
answer comes: the caller then undoes the change (server/services/devices.py).

Requests go with QoS 2. Mosquitto 2.0.11 sends what a plugin publishes only at a later turn of its event
loop, after up to 100 ms of waiting for socket activity; the PUBREL that QoS 2 makes the server send is that
activity, so the answer comes within a round trip or two (bench/bench_provision.py measures the whole path).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence

from tinyfleet.server.broker import identities
from tinyfleet.server.workers.broker_process import BrokerError

PER_REQUEST_S = 0.02  # more time for each request of a group: 1,000 at once may wait 25 s on a loaded machine


class BrokerControl:
    def __init__(self, publish: Callable[[str, bytes], None], wait_connected: Callable[[float], bool],
                 timeout_s: float = 5.0) -> None:  # fmt: skip
        """`publish(topic, payload)`: QoS 2 on the server's session; `wait_connected(seconds)`: whether that
        session is up, waiting at most that long for it to come back."""
        self._publish, self._wait_connected = publish, wait_connected
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        # request id -> (set when all of its group answered, the group's answers, the group's size)
        self._waiting: dict[str, tuple[threading.Event, dict[str, str], int]] = {}

    def apply(self, username: str) -> str:
        """Drop `username`'s live session; return what its identity file holds (identities.PRESENT, ...)."""
        return self.apply_many([username])[username]

    def apply_many(self, usernames: Sequence[str]) -> dict[str, str]:
        """`apply` for several users at once: every request is published before the first answer is awaited,
        so n changes cost about one round trip, not n. Raises BrokerError unless every user got an answer
        within timeout_s (plus PER_REQUEST_S for each request after the first)."""
        ids = {secrets.token_hex(8): u for u in usernames}
        done, answers = threading.Event(), {}
        with self._lock:
            for request_id in ids:
                self._waiting[request_id] = (done, answers, len(ids))
        timeout = self.timeout_s + PER_REQUEST_S * (len(ids) - 1)
        deadline = time.monotonic() + timeout
        try:
            # never queued for later: it would drop a session long after the change
            if not self._wait_connected(self.timeout_s):
                raise BrokerError(f"the server has not been connected to the broker for {self.timeout_s:g} s")
            for request_id, username in ids.items():
                self._publish(identities.CONTROL_TOPIC, identities.apply_request(request_id, username))
            if not done.wait(max(0.0, deadline - time.monotonic())):
                with self._lock:
                    missing = len(ids) - len(answers)
                what = "the change" if len(ids) == 1 else f"{missing} of {len(ids)} changes"
                raise BrokerError(f"the broker did not confirm {what} within {timeout:g} s")
            return {ids[r]: state for r, state in answers.items()}
        finally:
            with self._lock:
                for request_id in ids:
                    self._waiting.pop(request_id, None)

    def received(self, payload: bytes) -> None:
        """A message on identities.RESPONSE_TOPIC; answers nobody waits for (any more) are dropped."""
        parsed = identities.parse_response(payload)
        if parsed is None:
            return
        with self._lock:
            waiter = self._waiting.get(parsed[0])
            if waiter is None:
                return
            done, answers, expected = waiter
            answers[parsed[0]] = parsed[1]
            if len(answers) == expected:
                done.set()
