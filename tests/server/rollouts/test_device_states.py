"""A device's part in one rollout: the table and the rules that choose its events, tested without a database."""

from __future__ import annotations

import pytest

from tinyfleet.protocol.codes import AgentEvent, AgentState, Reason
from tinyfleet.protocol.records import StateReport
from tinyfleet.server.rollouts import device_states as ds
from tinyfleet.server.rollouts.device_states import PreviousBundle, plan_rollback, report_event

NEW, OLD = bytes([1]) * 32, bytes([2]) * 32


def report(
    to: AgentState, reason: Reason = Reason.NONE, desired_seq: int = 5, running: bytes = NEW, target: bytes = NEW
) -> StateReport:
    return StateReport(0, to, AgentEvent.Boot, 1, 1, reason, desired_seq, target, running, 0, 0, 0)


def test_finished_statuses_only_leave_by_roll_back() -> None:
    for (status, event), _to in ds.TRANSITIONS.items():
        if status in ("succeeded", "failed"):
            assert event == "roll_back"
    assert not any(s == "rolled_back" for (s, _e) in ds.TRANSITIONS)
    assert ds.ROLLBACK_FROM == ("assigned", "succeeded", "failed")


def test_every_status_is_reachable_from_pending() -> None:
    seen, todo = {ds.INITIAL}, [ds.INITIAL]
    while todo:
        s = todo.pop()
        for (src, _e), to in ds.TRANSITIONS.items():
            if src == s and to not in seen:
                seen.add(to)
                todo.append(to)
    assert seen == set(ds.STATUSES)


def test_an_event_the_table_lacks_changes_nothing() -> None:
    assert ds.next_status("succeeded", "installed") is None
    assert ds.next_status("pending", "timed_out") is None
    assert ds.next_status("rolled_back", "roll_back") is None


def test_assignment_of_a_device_already_running_the_bundle_succeeds_at_once() -> None:
    assert ds.assign_event(NEW.hex(), NEW.hex()) == ("already_running", "already running")
    # unless the device is not present: then it must report like any other
    assert ds.assign_event(NEW.hex(), NEW.hex(), present=False) == ("assign", None)
    assert ds.assign_event(OLD.hex(), NEW.hex()) == ("assign", None)
    assert ds.assign_event(None, NEW.hex()) == ("assign", None)


@pytest.mark.parametrize(
    ("r", "expected"),
    [
        (report(AgentState.IDLE, Reason.Confirmed), ("installed", "Confirmed")),
        (report(AgentState.IDLE, running=OLD), None),  # idle on the old bundle: not an outcome yet
        # the target's content under another digest: the device says UpToDate about the target
        (report(AgentState.IDLE, Reason.UpToDate, running=OLD), ("installed", "UpToDate")),
        (report(AgentState.IDLE, Reason.UpToDate, running=OLD, target=OLD), None),  # about another target
        (report(AgentState.FAILED, Reason.HashMismatch), ("install_failed", "HashMismatch")),
        (report(AgentState.IDLE, Reason.HealthLatency, running=OLD), ("install_failed", "HealthLatency")),
        (report(AgentState.IDLE, Reason.TrialExhausted, running=OLD), ("install_failed", "TrialExhausted")),
        (report(AgentState.IDLE, Reason.PreviouslyFailed, running=OLD), ("install_failed", "PreviouslyFailed")),
        (report(AgentState.DOWNLOADING), None),
        (report(AgentState.IDLE, Reason.Confirmed, desired_seq=4), None),  # another desired state
        (report(AgentState.FAILED, Reason.HashMismatch, desired_seq=6), None),
    ],
)
def test_report_rules(r: StateReport, expected: tuple[str, str] | None) -> None:
    assert report_event(r, 5, NEW) == expected


def test_a_report_for_a_device_not_yet_given_a_desired_state_is_not_an_outcome() -> None:
    assert report_event(report(AgentState.IDLE, Reason.Confirmed), None, NEW) is None


def test_rollback_goes_to_the_previous_bundle() -> None:
    plan = plan_rollback("assigned", PreviousBundle("v1", 1, retired=False), stored_counter=1, new_counter=2)
    assert plan == ds.RollbackPlan("roll_back", "v1", "rolled back to v1")


def test_rollback_refused_when_the_device_stores_a_higher_counter() -> None:
    # confirmed the new bundle: it stores the new counter even if its presence has not said so yet
    plan = plan_rollback("succeeded", PreviousBundle("v1", 1, retired=False), stored_counter=1, new_counter=2)
    assert plan.event is None and plan.reason == "cannot roll back: v1 has security counter 1, the device stores 2"
    # failed: it reverted, its stored counter is what its presence says
    assert plan_rollback("failed", PreviousBundle("v1", 1, retired=False), 1, 2).desired == "v1"


def test_rollback_without_a_bundle_to_offer_clears_the_desired_state() -> None:
    for prev in (None, PreviousBundle("v1", 1, retired=True)):
        plan = plan_rollback("assigned", prev, stored_counter=None, new_counter=2)
        assert plan == ds.RollbackPlan("roll_back", None, "no previous bundle on the server; desired state cleared")


def test_a_failure_is_counted_under_its_reason_code() -> None:
    assert ds.failure_code("timed_out", "no install outcome within 60 s") == "InstallTimeout"
    assert ds.failure_code("install_failed", "UnknownKeyId") == "UnknownKeyId"
    assert ds.group_failures(["TooLarge", None, "HealthLatency", "HealthLatency"]) == {
        "HealthLatency": 2, "TooLarge": 1}  # fmt: skip
