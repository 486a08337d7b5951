"""A world event (broker or server restart) and the evidence that it happened.

The evidence is read around the restart by the run, not reported by the code that restarts: the broker's
(and the server's) process id before and after, whether the old processes are gone, when it happened, which
devices the broker dropped, and, once the world is quiet, whether every online device's connection was made
after the restart began. The invariant `restart-happened` (invariants.py) judges it, so a restart that was
skipped or silently failed fails the scenario instead of passing it for free.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tinyfleet.simulator.chaos.invariants import RestartFacts
from tinyfleet.simulator.chaos.scenarios import WorldEvent
from tinyfleet.simulator.server_proc import ServerProcess, pid_running
from tinyfleet.simulator.world import World

BROKER_DOWN_S = 2.0
SERVER_DOWN_S = 1.0


@dataclass(frozen=True)
class Strike:
    """What was read just before and just after one restart."""

    event: WorldEvent
    pids_before: dict[str, int | None]
    pids_after: dict[str, int | None]
    began_unix: float
    back_unix: float
    simulated_s: float  # the fleet's simulated time when the restart began
    began_monotonic: float
    connected_before: frozenset[str]  # devices online just before
    dropped_before: dict[str, int]  # per device: connections the broker side had ended until then


def _pids(server: ServerProcess, event: WorldEvent) -> dict[str, int | None]:
    pids = {"broker": server.broker_pid()}
    if event is WorldEvent.SERVER_RESTART:
        pids["server"] = server.pid
    return pids


async def strike(world: World, event: WorldEvent) -> Strike:
    """Restart what `event` names (the broker alone, or the server and its broker) and read the evidence."""
    devices = [d for d in world.fleet.devices if d.link is not None]
    before = _pids(world.server, event)
    connected = frozenset(d.id for d in devices if d.link.connected)  # type: ignore[union-attr]
    dropped = {d.id: d.link.dropped for d in devices}  # type: ignore[union-attr]
    began_unix, began, simulated_s = time.time(), time.monotonic(), world.fleet.clock.seconds
    if event is WorldEvent.BROKER_RESTART:
        await asyncio.to_thread(world.server.restart_broker, BROKER_DOWN_S)
    else:
        await asyncio.to_thread(world.server.restart, SERVER_DOWN_S)
    return Strike(event, before, _pids(world.server, event), began_unix, time.time(), simulated_s, began,
                  connected, dropped)  # fmt: skip


def facts(s: Strike, world: World) -> RestartFacts:
    """The evidence for the invariant, read once the world is quiet (after `converge`)."""
    links = {d.id: d.link for d in world.fleet.devices if d.link is not None}
    dropped = sum(1 for i in s.connected_before if links[i].dropped > s.dropped_before.get(i, 0))
    online = [link for link in links.values() if link.connected]
    still = tuple(name for name, pid in s.pids_before.items()
                  if pid is not None and pid != s.pids_after.get(name) and pid_running(pid))  # fmt: skip
    return RestartFacts(s.event.value, s.pids_before, s.pids_after, still, len(s.connected_before), dropped,
                        len(online), sum(1 for link in online if link.connected_at > s.began_monotonic))  # fmt: skip


def evidence(s: Strike, f: RestartFacts) -> dict[str, Any]:
    """The report's `restart` section (outside `outcome`: PIDs and times differ from run to run)."""
    return {
        "event": f.event,
        "began_at": datetime.fromtimestamp(s.began_unix, UTC).isoformat(timespec="milliseconds"),
        "restart_wall_s": round(s.back_unix - s.began_unix, 2),  # until the broker (or server) answered again
        "simulated_s": s.simulated_s,
        "pids_before": f.pids_before,
        "pids_after": f.pids_after,
        "old_still_running": list(f.old_still_running),
        "devices_online_before": f.connected_before,
        "devices_dropped": f.dropped,
        "devices_online_after": f.online_after,
        "devices_reconnected": f.reconnected,
    }
