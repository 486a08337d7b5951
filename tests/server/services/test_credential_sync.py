"""GroupSync: changes that arrive while a credential write is in progress share the next write."""

from __future__ import annotations

import threading
import time

import pytest

from tinyfleet.server.services.credential_sync import GroupSync


class GatedSink:
    """Records every write; the first write waits for `release` so callers can pile up behind it."""

    def __init__(self, fail_first: bool = False) -> None:
        self.writes: list[dict[str, str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_first = fail_first

    def sync(self, device_hashes):
        first = not self.entered.is_set()
        self.entered.set()
        if first:
            self.release.wait(10)
            if self.fail_first:
                raise OSError("disk full")
        self.writes.append(dict(device_hashes))


class Registry:
    def __init__(self) -> None:
        self.rows: dict[str, str] = {}
        self.lock = threading.Lock()

    def commit(self, device_id: str) -> None:
        with self.lock:
            self.rows[device_id] = f"hash-{device_id}"

    def read(self) -> dict[str, str]:
        with self.lock:
            return dict(self.rows)


def _wait_until(cond, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def _provisioner(group: GroupSync, reg: Registry, device_id: str, seen: dict[str, object]):
    def run() -> None:
        reg.commit(device_id)
        try:
            group.sync(reg.read)
            seen[device_id] = group._sink.writes[-1]  # type: ignore[attr-defined]
        except OSError as e:
            seen[device_id] = e

    return threading.Thread(target=run)


def test_one_write_per_change_when_changes_come_one_at_a_time():
    sink, reg = GatedSink(), Registry()
    sink.release.set()
    group = GroupSync(sink)
    for i in range(5):
        reg.commit(f"d{i}")
        group.sync(reg.read)
        assert f"d{i}" in sink.writes[-1]
    assert group.writes == 5


def test_changes_waiting_behind_a_write_share_the_next_one():
    sink, reg, seen = GatedSink(), Registry(), {}
    group = GroupSync(sink)
    first = _provisioner(group, reg, "d0", seen)
    first.start()
    assert sink.entered.wait(10)  # d0's write is in progress (it read the registry before the others)
    rest = [_provisioner(group, reg, f"d{i}", seen) for i in range(1, 8)]
    for t in rest:
        t.start()
    _wait_until(lambda: group._taken == 8)
    sink.release.set()
    for t in [first, *rest]:
        t.join(10)
    assert group.writes == 2
    assert list(sink.writes[0]) == ["d0"]
    assert sorted(sink.writes[1]) == [f"d{i}" for i in range(8)]
    for i in range(8):  # every caller returned after a write that holds its device
        assert f"d{i}" in seen[f"d{i}"]  # type: ignore[operator]


def test_a_failed_write_raises_in_its_caller_and_the_others_write_again():
    sink, reg, seen = GatedSink(fail_first=True), Registry(), {}
    group = GroupSync(sink)
    first = _provisioner(group, reg, "d0", seen)
    first.start()
    assert sink.entered.wait(10)
    second = _provisioner(group, reg, "d1", seen)
    second.start()
    _wait_until(lambda: group._taken == 2)
    sink.release.set()
    first.join(10)
    second.join(10)
    assert isinstance(seen["d0"], OSError)
    assert sorted(seen["d1"]) == ["d0", "d1"]  # type: ignore[arg-type]
    assert group.writes == 1


def test_a_reader_error_propagates():
    sink = GatedSink()
    sink.release.set()
    group = GroupSync(sink)

    def broken() -> dict[str, str]:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        group.sync(broken)
    group.sync(lambda: {"d0": "h"})  # the next caller is not stuck behind the failed one
    assert sink.writes == [{"d0": "h"}]
