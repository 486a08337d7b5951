"""Rollouts as records: create (resolve and stratify the target), list, pause, resume, abort."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from sqlmodel import Session, col, func, select

from tinyfleet.bundles.timefmt import iso_utc
from tinyfleet.server.db.models import Bundle, Device, Rollout, RolloutDevice
from tinyfleet.server.rollouts import device_states, states
from tinyfleet.server.rollouts.policy import BehaviourGate, InstallGate, Stage
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services import signing_keys
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound, Unprocessable


def stage_from_json(obj: Mapping[str, Any]) -> Stage:
    return Stage(
        percent=float(obj["percent"]),
        install=InstallGate(**obj.get("install", {})),
        behaviour=BehaviourGate(**obj.get("behaviour", {})),
    )


def stage_to_json(stage: Stage) -> dict[str, Any]:
    return {"percent": stage.percent, "install": asdict(stage.install), "behaviour": asdict(stage.behaviour)}


def validate_stages(stages: Sequence[Stage]) -> None:
    if not 1 <= len(stages) <= 10:
        raise BadRequest(f"{len(stages)} stages; a rollout needs 1 to 10")
    last = 0.0
    for i, s in enumerate(stages):
        if not last < s.percent <= 100:
            raise BadRequest(f"stage {i + 1}: percent {s.percent:g} must be above the previous ({last:g}) and <= 100")
        if not 0 <= s.install.max_failure_rate <= 1:
            raise BadRequest(f"stage {i + 1}: max_failure_rate must be within 0..1")
        if s.install.min_successes < 0 or s.install.soak_s < 0:
            raise BadRequest(f"stage {i + 1}: min_successes and soak_s must be >= 0")
        if s.install.install_timeout_s is not None and s.install.install_timeout_s <= 0:
            raise BadRequest(f"stage {i + 1}: install_timeout_s must be > 0")
        last = s.percent
    if last != 100:
        raise BadRequest(f"the last stage must reach 100 percent, not {last:g}")


def stratum_of(tags: Mapping[str, str], keys: Sequence[str]) -> str:
    return "|".join(f"{k}={tags.get(k, '-')}" for k in keys) or "all"


def resolve_target(
    session: Session, bundle: Bundle, hardware_class: str | None, tags: Mapping[str, str], device_ids: Sequence[str]
) -> tuple[list[Device], list[tuple[str, str]]]:
    """Devices the rollout may touch, and the matching or named devices left out, as (device id, why)."""
    if hardware_class is not None and hardware_class != bundle.hardware_class:
        raise Unprocessable(
            f"target hardware class {hardware_class!r} differs from the bundle's {bundle.hardware_class!r}"
        )
    q = select(Device).where(Device.hardware_class == bundle.hardware_class)
    if device_ids:
        q = q.where(col(Device.id).in_(list(device_ids)))
    devices = [d for d in session.exec(q.order_by(Device.id)) if all(d.tags.get(k) == v for k, v in tags.items())]
    excluded: list[tuple[str, str]] = []
    if device_ids:
        found = {d.id for d in devices}
        for i in device_ids:
            if i in found:
                continue
            other = session.get(Device, i)
            if other is None:
                raise NotFound(f"no device {i!r}")
            why = (f"hardware class {other.hardware_class}" if other.hardware_class != bundle.hardware_class
                   else "tags not matching")  # fmt: skip
            excluded.append((i, why))
    if bundle.device_scope is not None:
        excluded += [(d.id, f"outside the bundle's device scope ({bundle.device_scope})")
                     for d in devices if d.id != bundle.device_scope]  # fmt: skip
        devices = [d for d in devices if d.id == bundle.device_scope]
    # A device refuses a bundle below the security counter it stores (CounterTooLow): never target it.
    locked = [d for d in devices if d.security_counter is not None and d.security_counter > bundle.security_counter]
    excluded += [(d.id, f"security counter above the bundle's {bundle.security_counter}") for d in locked]
    devices = [d for d in devices if d not in locked]
    return devices, excluded


def count_reasons(excluded: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Why devices were left out, with how many for each reason, the most frequent first."""
    out: dict[str, int] = {}
    for _id, why in excluded:
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{why}: {n}" for why, n in counts.items())


def create(
    session: Session,
    *,
    bundle_id: str,
    hardware_class: str | None,
    tags: Mapping[str, str],
    device_ids: Sequence[str],
    stages: Sequence[Stage],
    stratify_by: Sequence[str] | None,
    rollback_on_halt: bool,
    actor: str,
    now: float | None = None,
    skip_busy: bool = False,
    allow_untrusted_key: bool = False,
) -> tuple[Rollout, list[str]]:
    """`skip_busy`: leave out devices already in an active rollout instead of refusing the whole rollout."""
    bundle = session.get(Bundle, bundle_id)
    if bundle is None:
        raise NotFound(f"no bundle {bundle_id!r}")
    if bundle.status == "retired":
        raise Conflict(f"bundle {bundle_id!r} is retired")
    now = time.time() if now is None else now
    if bundle.expires is not None and bundle.expires <= now:
        raise Unprocessable(f"bundle {bundle_id!r} expired at {iso_utc(bundle.expires)}; devices would refuse it")
    validate_stages(stages)
    devices, excluded = resolve_target(session, bundle, hardware_class, tags, device_ids)
    busy = dict(session.exec(
        select(RolloutDevice.device_id, Rollout.id)
        .join(Rollout, col(Rollout.id) == col(RolloutDevice.rollout_id))
        .where(col(RolloutDevice.device_id).in_([d.id for d in devices]), col(Rollout.state).in_(ACTIVE))
    ).all())  # fmt: skip
    if busy and not skip_busy:
        per_rollout = count_reasons([(d, f"in rollout {r}") for d, r in busy.items()])
        first = min(busy)
        raise Conflict(
            f"{len(busy)} of {len(devices)} target devices are already in an active rollout "
            f"({summarize(per_rollout)}; e.g. device {first} in rollout {busy[first]}); "
            "skip them with skip_busy (fleetctl rollout create --skip-busy)"
        )
    excluded += [(d, f"in active rollout {busy[d]}") for d in sorted(busy)]
    devices = [d for d in devices if d.id not in busy]
    counts = count_reasons(excluded)
    if not devices:
        where = f"{bundle.hardware_class} device"
        if tags:
            where += " with " + ", ".join(f"{k}={v}" for k, v in tags.items())
        if not excluded:
            raise Unprocessable(f"no registered {where} matches the target")
        raise Unprocessable(
            f"no {where} can take {bundle_id!r}: {len(excluded)} match the target, all excluded ({summarize(counts)})"
        )
    untrusting = signing_keys.not_trusting(session, bundle, devices)
    if untrusting and not allow_untrusted_key:
        runs = count_reasons([(d.id, f"{d.running_bundle}") for d in untrusting])
        raise Unprocessable(
            f"{len(untrusting)} of {len(devices)} target devices are not known to trust key "
            f"{signing_keys.signer(bundle)} that signed {bundle_id!r} (they run: {summarize(runs)}); they would refuse "
            "it (UnknownKeyId). First roll out a bundle signed by a key they trust whose firmware adds this one "
            "(upload it with grants_key), or set allow_untrusted_key (docs/operations.md, 'Rotating a signing key')"
        )
    keys = sorted(stratify_by) if stratify_by is not None else sorted({k for d in devices for k in d.tags})
    excluded_lines = [f"{i}: {why}" for i, why in excluded]
    ro = Rollout(
        bundle_id=bundle_id,
        state="running",
        stage_index=0,
        stage_started_at=now,
        stages=[stage_to_json(s) for s in stages],
        target={
            "hardware_class": bundle.hardware_class,
            "tags": dict(tags),
            "device_ids": list(device_ids),
            "stratify_by": keys,
            "excluded": excluded_lines,
            "excluded_counts": counts,
        },  # fmt: skip
        rollback_on_halt=rollback_on_halt,
        created_at=now,
        updated_at=now,
        created_by=actor,
    )
    session.add(ro)
    session.flush()
    assert ro.id is not None
    for d in devices:
        session.add(RolloutDevice(rollout_id=ro.id, device_id=d.id, stratum=stratum_of(d.tags, keys)))
    session.commit()
    session.refresh(ro)
    return ro, excluded_lines


def set_status(rd: RolloutDevice, event: device_states.Event, reason: str | None, now: float) -> bool:
    """Apply a device event from the table; False (nothing changed) when the table has no such move."""
    to = device_states.next_status(rd.status, event)
    if to is None:
        return False
    rd.status, rd.reason = to, reason
    if to == "failed":
        rd.failure = device_states.failure_code(event, reason)
    if to != "assigned":
        rd.finished_at = rd.finished_at or now
    return True


def get(session: Session, rollout_id: int) -> Rollout:
    ro = session.get(Rollout, rollout_id)
    if ro is None:
        raise NotFound(f"no rollout {rollout_id}")
    return ro


def list_rollouts(session: Session, state: str | None = None) -> list[Rollout]:
    q = select(Rollout)
    if state:
        q = q.where(Rollout.state == state)
    return list(session.exec(q.order_by(col(Rollout.id).desc())))


def devices_of(session: Session, rollout_id: int, lock: bool = False) -> list[RolloutDevice]:
    """`lock`: hold the rows until the transaction ends (PostgreSQL `FOR UPDATE`; SQLite has one writer anyway),
    so a decision and its effects see the same outcomes while ingest records new ones."""
    q = select(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id).order_by(RolloutDevice.device_id)
    return list(session.exec(q.with_for_update() if lock else q))


def counts(session: Session, rollout_id: int) -> dict[str, int]:
    """Devices by status, counted by the database (a rollout's status is read often, and may cover 100,000s)."""
    out = {"pending": 0, "assigned": 0, "succeeded": 0, "failed": 0, "rolled_back": 0}
    q = (select(RolloutDevice.status, func.count()).where(RolloutDevice.rollout_id == rollout_id)
         .group_by(col(RolloutDevice.status)))  # fmt: skip
    for status, n in session.exec(q):
        out[status] = n
    return out


def failures(session: Session, rollout_id: int) -> dict[str, int]:
    """Every device that failed in this rollout (rolled back since or not), grouped by reason code."""
    q = select(RolloutDevice.failure).where(RolloutDevice.rollout_id == rollout_id,
                                            col(RolloutDevice.failure).is_not(None))  # fmt: skip
    return device_states.group_failures(list(session.exec(q)))


def _transition(session: Session, rollout_id: int, event: str, reason: str | None) -> Rollout:
    ro = get(session, rollout_id)
    to = states.next_state(ro.state, event)
    if to is None:
        allowed = ", ".join(states.sources(event))
        raise Conflict(f"rollout {rollout_id} is {ro.state}; cannot {event} it (only when {allowed})")
    ro.state, ro.updated_at = to, time.time()
    if reason is not None:
        ro.reason = reason
    session.add(ro)
    session.commit()
    session.refresh(ro)
    return ro


def pause(session: Session, rollout_id: int) -> Rollout:
    return _transition(session, rollout_id, "pause", None)


def resume(session: Session, rollout_id: int) -> Rollout:
    return _transition(session, rollout_id, "resume", None)
