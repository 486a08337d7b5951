"""A device's part in one rollout: every (status, event) -> status in one table, and the rules that choose the
event. docs/operations.md shows the diagram `mermaid()` draws from it (tests/server/test_docs.py keeps the two
equal).

Three callers write a device's outcome, and each asks this module which event happened: the rollout engine
when a stage takes the device (`assign_event`) or a halt or abort rolls it back (`plan_rollback`), ingest when
the device reports (`report_event`), and the policy when the device stays silent past the install timeout
(`TIMED_OUT`); and deleting a device mid-install fails its entry (a pending entry is simply dropped: the
rollout never touched it). Pure: no clock, database or broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tinyfleet.protocol.codes import REASON_NAMES, AgentState, Reason
from tinyfleet.protocol.records import HEALTH_FAILURES, StateReport

DeviceStatus = Literal["pending", "assigned", "succeeded", "failed", "rolled_back"]
Event = Literal["assign", "already_running", "installed", "install_failed", "timed_out", "roll_back", "deleted"]

TRANSITIONS: dict[tuple[DeviceStatus, Event], DeviceStatus] = {
    ("pending", "assign"): "assigned",  # engine: the stage takes it; its desired state names the bundle
    ("pending", "already_running"): "succeeded",  # engine: it runs the bundle already; nothing is published
    ("assigned", "installed"): "succeeded",  # report: IDLE on the bundle, for the desired state it was given
    ("assigned", "install_failed"): "failed",  # report: FAILED, a health-check revert or PreviouslyFailed
    ("assigned", "timed_out"): "failed",  # policy: no outcome within the stage's install_timeout_s
    ("assigned", "deleted"): "failed",  # an admin deleted the device before it reported an outcome
    ("assigned", "roll_back"): "rolled_back",  # engine: halt or abort; its desired state goes back
    ("succeeded", "roll_back"): "rolled_back",
    ("failed", "roll_back"): "rolled_back",  # it reverted on its own; the desired state follows it back
}
INITIAL: DeviceStatus = "pending"
STATUSES: tuple[DeviceStatus, ...] = ("pending", "assigned", "succeeded", "failed", "rolled_back")
TIMED_OUT: Event = "timed_out"


def next_status(status: str, event: Event) -> DeviceStatus | None:
    return TRANSITIONS.get((status, event))  # type: ignore[call-overload]


def sources(event: Event) -> tuple[DeviceStatus, ...]:
    return tuple(s for (s, e) in TRANSITIONS if e == event)


ROLLBACK_FROM = sources("roll_back")


def mermaid() -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
    lines += [f"    {s} --> {t}: {e}" for (s, e), t in TRANSITIONS.items()]
    lines += [f"    {s} --> [*]" for s in STATUSES if not any(src == s for (src, _e) in TRANSITIONS)]
    return "\n".join(lines)


INSTALL_TIMEOUT = "InstallTimeout"  # the failure code of a device that stayed silent past the install timeout


def failure_code(event: Event, reason: str | None) -> str:
    """The reason code a failed device is counted under: the agent's reason name, or `InstallTimeout`."""
    if event == TIMED_OUT:
        return INSTALL_TIMEOUT
    return reason or "Failed"


def group_failures(codes: list[str | None]) -> dict[str, int]:
    """Failure codes with their counts, the most frequent first (ties by name)."""
    out: dict[str, int] = {}
    for c in codes:
        if c is not None:
            out[c] = out.get(c, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def format_failures(groups: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in groups.items())


def assign_event(running_digest: str | None, target_digest: str, present: bool = True) -> tuple[Event, str | None]:
    """A stage takes a device: the event and the reason to record. A device that is not present (offline, or
    silent past the presence timeout) is assigned even when the server last saw it on the bundle: it counts
    as succeeded only once it reports, so a dead device is never a success."""
    if running_digest == target_digest and present:
        return "already_running", "already running"
    return "assign", None


def report_event(
    report: StateReport, assigned_seq: int | None, target_digest: bytes
) -> tuple[Event, str | None] | None:
    """What a state report says about the install the rollout asked for, or None when it says nothing about
    it (another desired state, or a step on the way). Taken from the report's content alone, so duplicated,
    reordered or late deliveries cannot change the outcome."""
    if assigned_seq is None or report.desired_seq != assigned_seq:
        return None  # about another desired state (an older one, or a rollback)
    if report.to_state == AgentState.IDLE and report.running_digest == target_digest:
        return "installed", REASON_NAMES.get(report.reason)
    same_content = report.reason == Reason.UpToDate and report.target_digest == target_digest
    if report.to_state == AgentState.IDLE and same_content:
        # It runs the target's content under another digest (the same signed region, another signature): the
        # device checked the signature and the content (docs/device-protocol.md, "Bundle meta" step 3).
        return "installed", REASON_NAMES.get(report.reason)
    if (
        report.to_state == AgentState.FAILED
        or report.reason in HEALTH_FAILURES
        or report.reason == Reason.PreviouslyFailed
    ):
        return "install_failed", REASON_NAMES.get(report.reason, f"Reason{report.reason}")
    return None


@dataclass(frozen=True)
class PreviousBundle:
    """The bundle the device ran before the rollout, as the server holds it."""

    bundle_id: str
    security_counter: int
    retired: bool


@dataclass(frozen=True)
class RollbackPlan:
    """`event` None: the device keeps what it runs and only `reason` is recorded. Otherwise its desired state
    becomes `desired` (None: cleared) with the rollback flag when `desired` is set."""

    event: Event | None
    desired: str | None
    reason: str


def plan_rollback(
    status: str, previous: PreviousBundle | None, stored_counter: int | None, new_counter: int
) -> RollbackPlan:
    # A device that confirmed the new bundle stores at least its counter (presence may not say so yet).
    stored = max(stored_counter or 0, new_counter if status == "succeeded" else 0)
    if previous is not None and previous.security_counter < stored:
        # It would refuse the old bundle (CounterTooLow): it keeps the new one, and the rollout records why.
        return RollbackPlan(
            None,
            None,
            f"cannot roll back: {previous.bundle_id} has security counter {previous.security_counter}, "
            f"the device stores {stored}",
        )
    if previous is not None and not previous.retired:
        return RollbackPlan("roll_back", previous.bundle_id, f"rolled back to {previous.bundle_id}")
    # The server never held (or has retired) the bundle the device ran before: it cannot be offered again.
    return RollbackPlan("roll_back", None, "no previous bundle on the server; desired state cleared")
