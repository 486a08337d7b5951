"""The retained guard's decisions, driven directly: when a reconnect means the broker lost retained state."""

from __future__ import annotations

import threading

from tinyfleet.server.workers.retained_guard import RetainedGuard


class Recorder:
    def __init__(self) -> None:
        self.published: list[bytes] = []
        self.lost = threading.Event()

    def guard(self, wait_s: float = 0.2) -> RetainedGuard:
        return RetainedGuard("m", lambda _t, p: self.published.append(p), self.lost.set, wait_s=wait_s)


def test_the_latest_marker_back_after_a_reconnect_means_nothing_was_lost() -> None:
    r = Recorder()
    g = r.guard()
    g.stamp()
    g.stamp()
    assert len(r.published) == 2 and r.published[0] != r.published[1]
    g.reconnected()
    g.marker_received(r.published[-1])
    assert not r.lost.wait(0.5) and g.repairs == 0


def test_an_older_marker_or_none_at_all_means_lost() -> None:
    r = Recorder()
    g = r.guard()
    g.stamp()
    g.stamp()
    g.reconnected()
    g.marker_received(r.published[0])  # the broker restored an older save
    assert r.lost.wait(2) and g.repairs == 1

    r2 = Recorder()
    g2 = r2.guard(wait_s=0.1)
    g2.stamp()
    g2.reconnected()  # and no marker arrives at all
    assert r2.lost.wait(2) and g2.repairs == 1


def test_nothing_to_check_before_the_first_publication_or_outside_a_check() -> None:
    r = Recorder()
    g = r.guard(wait_s=0.1)
    g.reconnected()  # nothing published by this run yet
    g.marker_received(b"from another run")  # not checking: ignored
    assert not r.lost.wait(0.4) and g.repairs == 0


def test_markers_of_another_server_run_do_not_match() -> None:
    a, b = Recorder(), Recorder()
    ga, gb = a.guard(), b.guard()
    ga.stamp()
    gb.stamp()
    assert a.published[0][8:] == b.published[0][8:]  # same generation ...
    assert a.published[0] != b.published[0]  # ... but each run has its own id
