"""The invariants every chaos run must end with (pure: facts in, violations out).

1. no-bricked: every device boots a verified image (boot selection found one and it runs).
2. new-or-previous: every device runs either the rollout's new bundle or the one it ran before.
3. rollout-outcome: a good release completes with every targeted device on it; a bad one halts in its first
   stage, its touched devices rolled back, every device back on its previous bundle.
4. server-equals-devices: the server's view of each device (running bundle, update state) equals the
   device's own: what it runs, and the state of the last report in its own log.
   no-report-lost: every state report the broker acknowledged (PUBACK) is stored by the server, and the
   server stores no report the device did not send. Reports the device queued but the broker never
   acknowledged before a power cut may be lost: the protocol says so (docs/device-protocol.md).
5. drift-falls: every recalibrated device's drift score, as the server computes it, fell.
6. never-mixed: every device's booted bank is exactly the signed bundle the device says it runs, checked in
   Python apart from the agent's own verifier (simulator/bank_check.py) at every boot and again at the end.
7. restart-happened (broker-restart, server-restart): the restarted processes are new ones (new PIDs, the old
   ones gone), the broker dropped at least one device's connection, and every device online at the end holds
   a connection made after the restart began.
A device on which the simulator itself failed (an exception in its step) is reported as `simulator-error`:
the run fails rather than counting that device as anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeviceFacts:
    device_id: str
    hw: str
    bricked: str | None
    sim_error: str | None
    running: str | None  # bundle id the device's booted bank holds
    last_report_state: str | None  # to_state of the highest (epoch, seq) report in the device's own log
    server_running: str | None
    server_state: str | None
    sent_reports: frozenset[tuple[int, int]] = frozenset()  # (epoch, seq) of every report the device published
    acked_reports: frozenset[tuple[int, int]] = frozenset()  # those the broker acknowledged
    server_reports: frozenset[tuple[int, int]] = frozenset()  # those the server stored
    bank_problem: str | None = None  # the first problem the Python check of its booted bank found


@dataclass(frozen=True)
class RolloutFacts:
    rollout_id: int
    hw: str
    new_bundle: str
    previous_bundle: str
    state: str
    stage_index: int
    device_status: dict[str, str]  # device id -> pending/assigned/succeeded/failed/rolled_back


@dataclass(frozen=True)
class RestartFacts:
    """Evidence that a world event restarted what it names (`processes`: "broker", and "server" for a server
    restart), read around it by the runner, not by the code that restarts."""

    event: str
    pids_before: dict[str, int | None]
    pids_after: dict[str, int | None]
    old_still_running: tuple[str, ...]  # names whose old process still runs after the restart
    connected_before: int  # devices online just before the restart
    dropped: int  # of them, devices whose connection the broker side ended after the restart began
    online_after: int  # devices online once the world was quiet
    reconnected: int  # of those, devices whose connection was made after the restart began


@dataclass(frozen=True)
class Violation:
    invariant: str
    subject: str
    detail: str


@dataclass(frozen=True)
class Facts:
    devices: list[DeviceFacts]
    rollouts: list[RolloutFacts]
    expect: str  # "completed" or "halted"
    drift_before: dict[str, float] = field(default_factory=dict)
    drift_after: dict[str, float] = field(default_factory=dict)
    # device id -> the bundles it may legitimately run besides new/previous (its calibration-only bundle)
    also_allowed: dict[str, set[str]] = field(default_factory=dict)
    restart: RestartFacts | None = None  # the evidence of the scenario's restart, when it has one


INVARIANTS = ("no-bricked", "new-or-previous", "rollout-outcome", "server-equals-devices", "no-report-lost",
              "drift-falls", "never-mixed", "restart-happened", "simulator-error")


def check(f: Facts) -> list[Violation]:
    out: list[Violation] = []
    by_hw = {r.hw: r for r in f.rollouts}
    for d in f.devices:
        if d.sim_error is not None:
            out.append(Violation("simulator-error", d.device_id, d.sim_error))
            continue
        if d.bank_problem is not None:
            out.append(Violation("never-mixed", d.device_id, d.bank_problem))
        if d.bricked is not None or d.running is None:
            out.append(Violation("no-bricked", d.device_id, d.bricked or "no verified image runs"))
            continue
        r = by_hw.get(d.hw)
        allowed = set(f.also_allowed.get(d.device_id, set()))
        if r is not None:
            allowed |= {r.new_bundle, r.previous_bundle}
        if allowed and d.running not in allowed:
            detail = f"runs {d.running}, expected one of {sorted(allowed)}"
            out.append(Violation("new-or-previous", d.device_id, detail))
        lost = sorted(d.acked_reports - d.server_reports)
        if lost:
            out.append(Violation("no-report-lost", d.device_id,
                                 f"{len(lost)} acknowledged report(s) not on the server, first (epoch, seq) {lost[0]}"))
        phantom = sorted(d.server_reports - d.sent_reports)
        if phantom:
            out.append(Violation("no-report-lost", d.device_id,
                                 f"server stores {len(phantom)} report(s) the device never sent, first {phantom[0]}"))
        if (d.server_running, d.server_state) != (d.running, d.last_report_state):
            out.append(Violation("server-equals-devices", d.device_id,
                                 f"server says {d.server_running}/{d.server_state}, device runs {d.running} "
                                 f"and last reported {d.last_report_state}"))  # fmt: skip
    devices = {d.device_id: d for d in f.devices}
    for r in f.rollouts:
        subject = f"rollout {r.rollout_id} ({r.new_bundle})"
        if f.expect == "completed":
            if r.state != "completed":
                out.append(Violation("rollout-outcome", subject, f"ended {r.state}, expected completed"))
            for dev_id in r.device_status:
                d = devices.get(dev_id)
                if d is not None and d.running != r.new_bundle:
                    out.append(Violation("rollout-outcome", dev_id, f"runs {d.running} after {subject} completed"))
        else:
            if r.state != "halted" or r.stage_index != 0:
                detail = f"ended {r.state} at stage {r.stage_index + 1}, expected halted in stage 1"
                out.append(Violation("rollout-outcome", subject, detail))
            touched = {k: v for k, v in r.device_status.items() if v != "pending"}
            if not touched:
                out.append(Violation("rollout-outcome", subject, "no device was touched: the canary never ran"))
            for dev_id, status in touched.items():
                if status != "rolled_back":
                    out.append(Violation("rollout-outcome", dev_id, f"status {status}, expected rolled_back"))
            for d in f.devices:
                if d.hw == r.hw and d.running != r.previous_bundle:
                    out.append(Violation("rollout-outcome", d.device_id,
                                         f"runs {d.running}, expected the previous {r.previous_bundle}"))  # fmt: skip
    if f.restart is not None:
        out += _restart(f.restart)
    for dev_id, before in f.drift_before.items():
        after = f.drift_after.get(dev_id)
        if after is None or not after < before:
            out.append(Violation("drift-falls", dev_id, f"drift score {before:.3f} -> {after}"))
    return out


def _restart(r: RestartFacts) -> list[Violation]:
    out = []
    for name, old in r.pids_before.items():
        new = r.pids_after.get(name)
        if old is None or new is None or new == old:
            out.append(Violation("restart-happened", r.event, f"{name} PID {old} before, {new} after: not restarted"))
    for name in r.old_still_running:
        out.append(Violation("restart-happened", r.event, f"the old {name} (PID {r.pids_before[name]}) still runs"))
    if r.dropped == 0:
        out.append(Violation("restart-happened", r.event,
                             f"no device lost its connection ({r.connected_before} were online before)"))  # fmt: skip
    if r.reconnected < r.online_after:
        out.append(Violation("restart-happened", r.event,
                             f"{r.online_after - r.reconnected} of {r.online_after} online devices still hold a "
                             "connection from before the restart"))  # fmt: skip
    return out
