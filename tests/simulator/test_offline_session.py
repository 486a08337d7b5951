"""A device offline for longer than a rollout stage gets its desired state from its broker session.

Real fleet-server, its Mosquitto with the project's configuration, real agents. The device's network goes
down mid-rollout (it stays powered: no reboot, no new boot) before the stage that takes it begins; the
server publishes its desired state while it is away; it comes back after more than a whole stage's
duration. The proof that the session did the work and not the retained message: the CONNACK said Session
Present, and the desired state reached the device once, with the retain flag clear (a message forwarded
to a subscription the broker kept, not a retained copy handed out at a SUBSCRIBE), and the rollout
completes with it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tinyfleet.protocol import topics
from tinyfleet.simulator import releases
from tinyfleet.simulator.device import SimDevice
from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.releases import Release, bundle_id
from tinyfleet.simulator.world import World

from .conftest import settled_world

V2 = Release("vibration-1.1.0", counter=2, firmware_version="2.4.0")
HW = "stm32l4"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with settled_world(tmp_path / "world", FleetSpec(6, seed=5, mix={HW: 1.0})) as w:
        yield w


class Received:
    """What the device's real MQTT client gets from the broker, in order: ("connack", Session Present) and
    ("message", topic, retain flag), recorded on the way to the device (every connect makes a new paho
    client, which takes the link's handlers)."""

    def __init__(self, d: SimDevice) -> None:
        assert d.link is not None
        self.events: list[tuple[str, str | bool, bool]] = []
        link = d.link
        deliver, connected = link._on_message, link._on_connect

        def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
            self.events.append(("message", msg.topic, bool(msg.retain)))
            deliver(client, userdata, msg)

        def on_connect(client: mqtt.Client, u: object, flags: mqtt.ConnectFlags, rc: object, p: object) -> None:
            self.events.append(("connack", bool(flags.session_present), False))
            connected(client, u, flags, rc, p)

        link._on_message = on_message  # type: ignore[method-assign]
        link._on_connect = on_connect  # type: ignore[method-assign]

    def first_connection(self) -> list[tuple[str, str | bool, bool]]:
        """From the first CONNACK up to the next one."""
        starts = [i for i, e in enumerate(self.events) if e[0] == "connack"] + [len(self.events)]
        return self.events[starts[0] : starts[1]] if len(starts) > 1 else []


def network_down(d: SimDevice) -> None:
    """The device stays powered but its connection dies (the broker sees it go: its will is published) and
    it does not dial again until network_up."""
    assert d.link is not None and d.link.connected
    d.link.close(graceful=False)
    d.on_link_down()
    d.reconnect_at_ms = None


def network_up(d: SimDevice) -> None:
    d.reconnect_at_ms = d.clock.ms


async def test_a_device_offline_longer_than_a_stage_gets_its_desired_state_from_its_session(world: World) -> None:
    w = world
    api = w.api
    assert api is not None
    await w.release(V2, HW)
    stages = [{"percent": 50, "install": {"soak_s": 2}}, {"percent": 100}]
    async with w.fleet.held():  # simulated time stands still: stage 1 cannot finish before the cut
        rid = await w.rollout(V2, HW, stages)

        async def canary_assigned() -> bool:
            return any(d["stage"] == 0 for d in await api.rollout_devices(rid))

        assert await w.fleet.wait_for(canary_assigned, 30)
        canary = {d["device_id"] for d in await api.rollout_devices(rid) if d["stage"] == 0}
        late = sorted(w.ids - canary)
        assert canary and late
        dev = w.device(late[0])
        network_down(dev)
        received = Received(dev)

    async def assigned() -> bool:
        return any(d["device_id"] == dev.id and d["status"] == "assigned" for d in await api.rollout_devices(rid))

    assert await w.fleet.wait_for(assigned, 120), "the second stage never took the offline device"
    rows = await api.rollout_devices(rid)
    stage0 = [d for d in rows if d["stage"] == 0]
    mine = next(d for d in rows if d["device_id"] == dev.id)
    stage0_s = mine["assigned_at"] - min(d["assigned_at"] for d in stage0)  # stage 1 from its start to stage 2's
    assert stage0_s >= 2 and all(d["status"] == "succeeded" for d in stage0), rows

    # Away for longer than a whole stage after its own stage began (and since before that stage began).
    while time.time() - mine["assigned_at"] <= stage0_s + 1:
        await w.fleet.run_for(1)
    assert received.events == [] and not dev.link.connected  # type: ignore[union-attr]
    assert dev.agent.connect_options() == (False, w.config.session_expiry_s)  # this boot's session: resume it

    network_up(dev)
    final = await w.wait_rollouts([rid], timeout_s=180)
    assert final[rid]["rollout"]["state"] == "completed", final[rid]
    assert final[rid]["counts"]["succeeded"] == len(w.ids) and final[rid]["counts"]["failed"] == 0

    # The reconnect resumed the session, and the desired state came from it once, not as a retained copy.
    back = received.first_connection()
    assert back and back[0] == ("connack", True, False), received.events[:5]
    desired = [e for e in back if e[:2] == ("message", topics.desired(dev.id))]
    assert desired == [("message", topics.desired(dev.id), False)], back
    assert any(e[0] == "message" and "/blobs/" in str(e[1]) for e in back)  # and it downloaded on that connection
    new = w.bundles[bundle_id(V2, HW)]
    assert dev.running_digest == releases.digest(new) and dev.log.bricked is None
    view = await api.device(dev.id)
    assert (view["running_bundle"], view["online"]) == (bundle_id(V2, HW), True)
