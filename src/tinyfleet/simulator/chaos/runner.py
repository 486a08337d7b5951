"""Run one chaos scenario end to end and collect the facts the invariants judge.

A world (fleet-server process, its Mosquitto, the devices) starts on the base release; the scenario's faults
are attached to the devices before they boot; the scenario's release is rolled out per hardware class with
stages 10 % -> 50 % -> 100 % (stratified by temperature band); a world event (broker or server restart) strikes
while the canary stage runs. Once every rollout has ended the run waits for the server's view to converge,
then checks the invariants. `drift` instead ages a quarter of the sensors and answers with per-device
calibration-only bundles for the devices whose input mean moved (drift_episode).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tinyfleet.bundles.components import Calibration
from tinyfleet.protocol import records
from tinyfleet.simulator import sensors
from tinyfleet.simulator.chaos import restarts
from tinyfleet.simulator.chaos.invariants import DeviceFacts, Facts, RolloutFacts, Violation, check
from tinyfleet.simulator.chaos.scenarios import STAGES, Expect, Scenario, WorldEvent
from tinyfleet.simulator.device import SimDevice
from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.releases import Release, bundle_id
from tinyfleet.simulator.world import BASE, World, tolerant

AGEING_YEARS = 2.0
AGEING_SIMULATED_S = 120.0
SENSOR_STREAM = 0xD81F7  # the drift episode's sensor noise stream, one per device seed


@dataclass
class RunResult:
    scenario: Scenario
    seed: int
    devices: int
    facts: Facts
    violations: list[Violation]
    rollouts: list[dict[str, Any]]
    activity: dict[str, Any]
    timing: dict[str, float]
    drift: dict[str, Any] = field(default_factory=dict)
    restart: dict[str, Any] = field(default_factory=dict)  # the evidence of the scenario's restart, if any

    @property
    def passed(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class OperatorRelease:
    """The operator's own bundle as the release under test (`fleet-sim chaos --bundle`), with the public keys
    that signed it: the server and every device trust them too, and the fleet is all of the bundle's class."""

    data: bytes
    bundle_id: str
    hardware_class: str
    trust: tuple[Path, ...]


async def run(scenario: Scenario, devices: int, seed: int, workdir: Path, timeout_s: float = 300.0,
              release: OperatorRelease | None = None) -> RunResult:  # fmt: skip
    started = time.monotonic()
    spec = FleetSpec(devices, seed=seed)
    if release is not None:
        spec = FleetSpec(devices, seed=seed, mix={release.hardware_class: 1.0})
    world = World(workdir, spec, trust=list(release.trust) if release else [])
    setups = {p.device_id: scenario.setup(p, seed) for p in world.plans}

    def device_args(p: Any) -> dict[str, Any]:
        s = setups[p.device_id]
        return {"chaos": s.chaos, "battery": s.battery}

    try:
        await world.start(device_args)
        if not await world.settle({bundle_id(BASE, hw) for hw in world.hws}, timeout_s=120):
            raise RuntimeError("the fleet did not come online on its factory bundle")
        settled = time.monotonic()
        drift: dict[str, Any] = {}
        also_allowed: dict[str, set[str]] = {}
        strike: restarts.Strike | None = None
        if scenario.name == "drift":
            rollouts, drift, also_allowed = await drift_episode(world, setups, BASE, timeout_s)
        else:
            rollouts, strike = await _rollout(world, scenario, timeout_s, release)
        await converge(world, timeout_s=60)
        facts = await collect_facts(world, scenario, rollouts, drift, also_allowed)
        evidence: dict[str, Any] = {}
        if strike is not None:
            facts = replace(facts, restart=restarts.facts(strike, world))
            evidence = restarts.evidence(strike, facts.restart)  # type: ignore[arg-type]
        violations = check(facts)
        now = time.monotonic()
        timing = {"wall_s": round(now - started, 1), "rollout_wall_s": round(now - settled, 1),
                  "simulated_s": world.fleet.clock.seconds}  # fmt: skip
        return RunResult(scenario, seed, devices, facts, violations, rollouts, _activity(world), timing, drift,
                         evidence)  # fmt: skip
    finally:
        await world.stop()


async def _rollout(world: World, scenario: Scenario, timeout_s: float, release: OperatorRelease | None = None
                   ) -> tuple[list[dict[str, Any]], restarts.Strike | None]:  # fmt: skip
    """Roll the release out per hardware class; strike the scenario's world event while the canary runs."""
    assert world.api is not None
    rids: dict[str, int] = {}
    names: dict[str, str] = {}
    for hw in world.hws:
        if release is not None:  # the operator's bundle instead of the scenario's sample release
            await world.api.upload_bundle(release.data, world.grants)
            world.bundles[release.bundle_id] = release.data
            body = {"bundle_id": release.bundle_id, "stages": STAGES, "target": {"hardware_class": hw},
                    "stratify_by": ["temperature"]}  # fmt: skip
            rids[hw] = int((await world.api.create_rollout(body))["rollout"]["id"])
            names[hw] = release.bundle_id
            continue
        await world.release(scenario.release, hw)
        rids[hw] = await world.rollout(scenario.release, hw, STAGES, stratify_by=["temperature"])
        names[hw] = bundle_id(scenario.release, hw)
    strike = None
    if scenario.event is not WorldEvent.NONE:
        api = world.api

        async def canary_running() -> bool:
            sts = [await api.rollout(r) for r in rids.values()]
            return any(s["counts"]["assigned"] or s["counts"]["succeeded"] for s in sts)

        await world.fleet.wait_for(tolerant(canary_running), timeout_s=60, poll_s=0.1)
        strike = await restarts.strike(world, scenario.event)
    final = await world.wait_rollouts(list(rids.values()), timeout_s)
    out = []
    for hw, rid in rids.items():
        st = final.get(rid) or await world.api.rollout(rid)
        devs = await world.api.rollout_devices(rid)
        out.append({"id": rid, "hw": hw, "bundle": names[hw], "previous": bundle_id(BASE, hw),
                    "state": st["rollout"]["state"], "stage_index": st["rollout"]["stage_index"],
                    "reason": st["rollout"]["reason"], "counts": st["counts"],
                    "devices": {d["device_id"]: d["status"] for d in devs}})  # fmt: skip
    return out, strike


View = tuple[float, float, bool]  # the server's drift score, shift and shift alert for one device


async def _views(world: World) -> dict[str, View]:
    """Per device: the server's drift score, shift and shift alert (GET /api/v1/drift)."""
    assert world.api is not None
    return {d["device_id"]: (float(d["score"]), float(d["shift"]), bool(d["shift_alert"]))
            for d in await world.api.drift() if d["device_id"] in world.ids}  # fmt: skip


async def _fresh_views(world: World, windows: int = 2, settle_s: float = 15.0) -> dict[str, View]:
    """Drift scores and shifts after `windows` more telemetry periods, so every device reported on its
    current state.

    Called with simulated time held (`Fleet.held`): once `run_for` returns, devices send nothing new, and the
    views are read once three polls a second apart agree, i.e. once the server has ingested every window in
    flight. Reading while time ran on made the scores depend on how busy the machine was."""
    await world.fleet.run_for(windows * world.config.telemetry_period_s + 2)
    deadline = asyncio.get_running_loop().time() + settle_s
    polls = [await _views(world)]
    while asyncio.get_running_loop().time() < deadline and not (len(polls) >= 3 and polls[-1] == polls[-3]):
        await asyncio.sleep(0.5)
        polls.append(await _views(world))
    return polls[-1]


async def drift_episode(world: World, setups: dict[str, Any], base: Release,
                        timeout_s: float) -> tuple[list, dict, dict]:  # fmt: skip
    """Age the sensors `setups` marks, flag the devices whose input mean moved (the server's shift alert; its
    score is scaled by the whole population's spread), and give each a per-device calibration-only bundle on
    top of `base` (the release they run): rollouts, drift figures, allowed bundles.

    Up to the flagging, simulated time is held and moved by the episode alone, from a telemetry boundary on
    which every sensor restarts its noise stream: the windows that decide the flags follow from the seed."""
    assert world.api is not None
    fleet, period_ms = world.fleet, world.config.telemetry_period_s * 1000
    cohort = {dev_id for dev_id, s in setups.items() if s.ageing_offset_per_year is not None}
    async with fleet.held():
        await fleet.run_for(-fleet.clock.ms % period_ms / 1000)
        for d in fleet.devices:
            d.restart_sensing(SENSOR_STREAM)
        ref_views = await _fresh_views(world)
        for dev_id in cohort:  # the sensors age AGEING_YEARS within AGEING_SIMULATED_S, then stay that old
            d = world.device(dev_id)
            d.profile = sensors.aged(d.profile, setups[dev_id].ageing_offset_per_year, 0.0)
            d.age(AGEING_YEARS, AGEING_SIMULATED_S)
        await fleet.run_for(AGEING_SIMULATED_S)
        drifted_views = await _fresh_views(world)
    reference = {k: v[0] for k, v in ref_views.items()}
    drifted = {k: v[0] for k, v in drifted_views.items()}
    shift = {k: v[1] for k, v in drifted_views.items()}
    flagged = sorted(k for k, v in drifted_views.items() if v[2])
    rids, allowed = {}, {}
    for dev_id in flagged:
        d = world.device(dev_id)
        proposal = await world.api.calibration_proposal(dev_id)
        release = calibration_release(d, proposal, base)
        await world.release(release, d.hw)
        allowed[dev_id] = {bundle_id(release, d.hw)}
        target = {"hardware_class": d.hw, "device_ids": [dev_id]}
        rids[dev_id] = await world.rollout(release, d.hw, [{"percent": 100}], target=target)
    final = await world.wait_rollouts(list(rids.values()), timeout_s) if rids else {}
    async with fleet.held():
        after = {k: v[0] for k, v in (await _fresh_views(world)).items()}
    rollouts = [{"id": rid, "device": dev_id, "bundle": next(iter(allowed[dev_id])),
                 "state": final[rid]["rollout"]["state"], "counts": final[rid]["counts"]}
                for dev_id, rid in rids.items()]  # fmt: skip
    drift = {
        "cohort": sorted(cohort),
        "flagged": flagged,
        "reference": {k: round(reference[k], 3) for k in flagged if k in reference},
        "reference_range": [round(min(reference.values()), 3), round(max(reference.values()), 3)] if reference else [],
        "drifted": {k: round(drifted[k], 3) for k in flagged},
        "shift": {k: round(shift[k], 2) for k in flagged},
        "healthy_shift_max": round(max((v for k, v in shift.items() if k not in cohort), default=0.0), 3),
        "after": {k: round(after[k], 3) for k in flagged if k in after},
        "before_for_check": {k: drifted[k] for k in flagged},
        "shift_for_check": shift,  # every device's, for the demo's account of a miss or a false flag
        "after_for_check": {k: after[k] for k in flagged if k in after},
    }
    return rollouts, drift, allowed


def calibration_release(d: SimDevice, proposal: dict[str, Any], base: Release) -> Release:
    """`base` with the server's proposed calibration (offsets and gains that bring the device's input back to
    its own reference window, docs/simulator.md "Drift, precisely"), scoped to that one device, security
    counter + 1 as the proposal says."""
    return replace(base, bundle_id=f"{base.bundle_id}-cal-{d.id}", counter=base.counter + 1,
                   calibration=Calibration.from_json(proposal["calibration"]), calibration_version=f"cal-{d.id}",
                   device_scope=d.id)  # fmt: skip


async def converge(world: World, timeout_s: float) -> bool:
    """Wait until the world is quiet and the server's view of every device equals the device's own.

    Simulated time keeps running while the facts are read, so "equal once" is not enough: a device that has
    not yet acted on its latest desired state (a rollback published as the rollout halted), has reports not
    yet acknowledged, or is off or offline, will still send something. Quiet means none of that holds for any
    device, on two polls in a row."""
    streak = 0

    async def quiet() -> bool:
        nonlocal streak
        views = {v["id"]: v for v in await world.api.devices()}  # type: ignore[union-attr]
        ok = all(_unsettled(d, views.get(d.id)) is None for d in world.fleet.devices)
        streak = streak + 1 if ok else 0
        return streak >= 2

    return await world.fleet.wait_for(tolerant(quiet), timeout_s)


def _own(d: SimDevice) -> tuple[str | None, str | None]:
    running = d.platform.image.bundle_id if d.platform.image is not None and not d.log.bricked else None
    last = max(d.log.reports) if d.log.reports else None
    return running, records.STATE_NAMES[d.log.reports[last].to_state] if last else None


def _unsettled(d: SimDevice, view: dict[str, Any] | None) -> str | None:
    """Why the device or the server's view of it may still change (None: settled)."""
    running, state = _own(d)
    if view is None:
        return "unknown to the server"
    if (view["running_bundle"], view["state"]) != (running, state):
        return f"{view['running_bundle']}/{view['state']} vs {running}/{state}"
    if d.log.bricked is not None or d.log.sim_error is not None:
        return None  # it will never say anything again; the invariants judge it
    if not d.powered or d.link is None or not d.link.connected:
        return "off or offline: it reports again when it is back"
    if d.agent.pending_reports:
        return f"{d.agent.pending_reports} report(s) not yet acknowledged by the broker"
    last = max(d.log.reports) if d.log.reports else None
    acted = d.log.reports[last].desired_seq if last else 0
    if view["desired_bundle"] is not None and acted < view["desired_seq"]:
        return f"has not acted on desired state {view['desired_seq']} yet (last report: {acted})"
    return None


async def collect_facts(world: World, scenario: Scenario, rollouts: list[dict[str, Any]], drift: dict[str, Any],
                 also_allowed: dict[str, set[str]]) -> Facts:  # fmt: skip
    assert world.api is not None
    views = {v["id"]: v for v in await world.api.devices()}
    devs = []
    for d in world.fleet.devices:
        v = views.get(d.id, {})
        acked = frozenset(d.log.acked_reports)  # read before the server's list, sent after: a report published
        stored = await _stored_reports(world, d.id, acked) if v else frozenset()  # in between is neither
        devs.append(device_facts(d, v, acked, stored))
    rfacts = [RolloutFacts(r["id"], r["hw"], r["bundle"], r["previous"], r["state"], r["stage_index"], r["devices"])
              for r in rollouts if "hw" in r]  # fmt: skip
    expect = Expect.COMPLETED.value if scenario.name == "drift" else scenario.expect.value
    if scenario.name == "drift":
        for r in rollouts:
            if r["state"] != "completed":
                rfacts.append(RolloutFacts(r["id"], "-", r["bundle"], "-", r["state"], 0, {}))
    return Facts(devs, rfacts, expect, drift.get("before_for_check", {}), drift.get("after_for_check", {}),
                 also_allowed)  # fmt: skip


def device_facts(d: SimDevice, view: dict[str, Any], acked: frozenset[tuple[int, int]],
                 stored: frozenset[tuple[int, int]]) -> DeviceFacts:  # fmt: skip
    """One device's facts: its own state, the server's view of it (`view`, from GET /devices), and its booted
    bank checked once more in Python against the bundle its last state report names (bank_check.py)."""
    running, state = _own(d)
    if running is not None:
        last = max(d.log.reports) if d.log.reports else None
        d.check_bank(d.log.reports[last].running_digest if last else d.running_digest, "at the end")
    return DeviceFacts(d.id, d.hw, d.log.bricked, d.log.sim_error, running, state, view.get("running_bundle"),
                       view.get("state"), frozenset(d.log.reports), acked, stored, d.log.bank_problem)  # fmt: skip


async def _stored_reports(world: World, device_id: str, acked: frozenset[tuple[int, int]],
                          grace_s: float = 10.0) -> frozenset[tuple[int, int]]:  # fmt: skip
    """The reports the server stored for a device, read again (up to grace_s) while some the broker acknowledged
    are missing: an acknowledged report may still be in the ingest queue; one missing after that is lost."""
    assert world.api is not None
    deadline = time.monotonic() + grace_s
    while True:
        stored = frozenset((r["epoch"], r["seq"]) for r in await world.api.device_reports(device_id))
        if acked <= stored or time.monotonic() >= deadline:
            return stored
        await asyncio.sleep(0.2)


def _activity(world: World) -> dict[str, Any]:
    devs = world.fleet.devices
    net: dict[str, int] = {}
    for d in devs:
        for k, v in d.net.counts.items():
            net[k] = net.get(k, 0) + v
    reasons: dict[str, int] = {}
    for d in devs:
        for r in d.log.reports.values():
            if r.reason:
                reasons[r.reason_name] = reasons.get(r.reason_name, 0) + 1
    return {
        "power_cuts": sum(d.log.power_cuts for d in devs),
        "boots": sum(d.log.boots for d in devs),
        "crash_boots": sum(d.log.crashes for d in devs),
        "corrupted_blocks": sum(d.log.corrupted_blocks for d in devs),
        "network_faults": dict(sorted(net.items())),
        "reports_sent": sum(len(d.log.reports) for d in devs),
        "report_reasons": dict(sorted(reasons.items())),
        "telemetry_windows": sum(d.log.telemetry for d in devs),
        "bank_checks": world.fleet.banks.checks,
        "inferences": world.fleet.pool.invocations,
        "interpreters": len(world.fleet.pool),
        "mqtt_sent": world.fleet.stats.sent,
        "mqtt_received": world.fleet.stats.received,
    }
