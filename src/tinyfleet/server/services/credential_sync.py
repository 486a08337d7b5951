"""Writing the broker's credential files after registry changes, shared by changes that arrive together.

Every write holds every device in the database, so one write made after several changes committed serves
all of them. A caller whose change has committed takes a ticket and waits until a write that started after
its ticket has finished; whoever finds no write in progress makes the next one, for every ticket taken so
far (a group commit). Provisioning many devices at once then costs one rewrite and one broker reload per
group instead of one per device, and the files never hold an older device list than the last write did.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Protocol


class CredentialSink(Protocol):
    """Where device broker credentials go (the embedded broker's password and ACL files)."""

    @property
    def reserved(self) -> frozenset[str]:
        """Broker usernames the server owns: never a device id."""
        ...

    def sync(self, device_hashes: Mapping[str, str]) -> None:
        """Return once the broker takes exactly these devices' credentials; raise if it cannot."""
        ...


class GroupSync:
    def __init__(self, sink: CredentialSink) -> None:
        self._sink = sink
        self._cond = threading.Condition()
        self._taken = 0  # tickets handed out
        self._written = 0  # every ticket up to this one is in a finished write
        self._writing = False
        self.writes = 0

    def sync(self, read_hashes: Callable[[], Mapping[str, str]]) -> None:
        """Return once the files hold every change committed before this call. `read_hashes` reads the
        database; it runs in the caller that makes the write. A failed write raises in the caller that made
        it; the callers it was writing for make the next attempt."""
        with self._cond:
            self._taken += 1
            ticket = self._taken
            while self._written < ticket:
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing = True
                covers = self._taken  # every one of these tickets committed before the read below
                self._cond.release()
                try:
                    self._sink.sync(read_hashes())
                finally:
                    self._cond.acquire()
                    self._writing = False
                    self._cond.notify_all()
                self.writes += 1
                self._written = max(self._written, covers)


_BY_SINK: weakref.WeakKeyDictionary[object, GroupSync] = weakref.WeakKeyDictionary()
_BY_SINK_LOCK = threading.Lock()


def for_sink(sink: CredentialSink) -> GroupSync:
    """The one GroupSync of this sink (a process may hold several servers, each with its own sink)."""
    with _BY_SINK_LOCK:
        group = _BY_SINK.get(sink)
        if group is None:
            group = _BY_SINK[sink] = GroupSync(sink)
        return group
