"""One simulated device: the real agent core (tinyfleet._agent) on an emulated platform, with its sensor.

Theory of operation. The core is sans-I/O: every event goes in (`boot`, `on_message`, `on_tick`, ...) and
comes back as a list of actions (subscribe, publish, run the health check, reboot) that this class performs
in order, through its `Link` (src/tinyfleet/simulator/mqtt_link.py). Events reach it on the fleet's one asyncio loop, so
each runs to completion before the next: the core never sees two at once.

Power is modelled honestly. A reboot the agent asks for closes the connection and powers the device on
again after the next image's boot time; a power cut (armed in the flash, src/tinyfleet/simulator/flash.py) raises out of
the core mid-operation, the connection dies without a DISCONNECT (the broker publishes the will) and the
device boots again later from whatever the flash holds. Boot selection then has to find a verified image:
a device on which it cannot, or whose only image keeps crashing, is counted as bricked.

The device's own log (every state report it published, by epoch and seq) is what the invariants compare
with the server's view.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from tinyfleet import _agent
from tinyfleet.protocol import records
from tinyfleet.protocol.codes import AgentState
from tinyfleet.simulator import sensors
from tinyfleet.simulator.bank_check import BankChecker
from tinyfleet.simulator.battery import Battery
from tinyfleet.simulator.clock import SimClock
from tinyfleet.simulator.flash import FlashLayout, PowerCut
from tinyfleet.simulator.inference import InterpreterPool
from tinyfleet.simulator.mqtt_link import Credentials, Link, LinkStats
from tinyfleet.simulator.netfaults import Fate, NetFaults, NetProfile
from tinyfleet.simulator.platform import SimPlatform

OFF_AFTER_CUT_MS = 3000
MAX_CRASH_LOOP = 12
ACTIVE_STATES = (AgentState.CHECKING.name, AgentState.DEFERRED.name, AgentState.DOWNLOADING.name)


@dataclass
class DeviceConfig:
    telemetry_period_s: int = 30
    broker_timeout_s: int = 600  # simulated seconds; long, so host load cannot fail a trial (docs/simulator.md)
    battery_retry_s: int = 20
    sense_period_s: float = 10.0
    reconnect_ms: int = 2000
    session_expiry_s: int = 86400  # how long the broker keeps the device's session (docs/device-protocol.md)
    layout: FlashLayout = field(default_factory=FlashLayout)


@dataclass
class Chaos:
    """Faults this device will suffer; all decided up front from the scenario's seed."""

    cut_at_ops: list[int] = field(default_factory=list)  # power cuts, each at the k-th flash op of an update
    net: NetProfile = field(default_factory=NetProfile)
    corrupt_block: float = 0.0  # probability that a delivered block arrives damaged (the CRC catches it) ...
    crc_valid_corruptions: int = 0  # ... except for this many, damaged with a matching CRC (SHA-256 catches them)


class ReportLog(Mapping[tuple[int, int], records.StateReport]):
    """The state reports a device published, by (epoch, seq), each kept as its wire bytes and decoded when read:
    a decoded report costs several times its 104 bytes, and a large fleet keeps every device's reports."""

    def __init__(self) -> None:
        self._raw: dict[tuple[int, int], bytes] = {}

    def add(self, payload: bytes) -> records.StateReport:
        r = records.decode_report(payload)
        self._raw[(r.epoch, r.seq)] = payload
        return r

    def __getitem__(self, key: tuple[int, int]) -> records.StateReport:
        return records.decode_report(self._raw[key])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


@dataclass
class DeviceLog:
    reports: ReportLog = field(default_factory=ReportLog)
    acked_reports: set[tuple[int, int]] = field(default_factory=set)  # the broker PUBACKed these
    boots: int = 0
    crashes: int = 0
    power_cuts: int = 0
    corrupted_blocks: int = 0
    telemetry: int = 0
    block_topics: set[str] = field(default_factory=set)  # distinct block topics delivered to the device
    bricked: str | None = None
    bank_problem: str | None = None  # the first problem the Python check of a booted bank found (bank_check.py)
    sim_error: str | None = None  # the simulator itself failed on this device (a bug to fix, never a pass)


def child_rng(seed: int, k: int) -> np.random.Generator:
    """The k-th generator spawned from the device's seed (what `default_rng(seed).spawn(...)[k]` gives), made
    when first needed: most devices never draw a flash, network or corruption fault, and a generator costs
    about a kilobyte."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(k,))))


class SimDevice:
    def __init__(
        self,
        device_id: str,
        hw: str,
        trusted_keys: list[bytes],
        *,
        seed: int,
        clock: SimClock,
        pool: InterpreterPool,
        latency_us: int,
        profile: sensors.SensorProfile,
        battery: Battery,
        config: DeviceConfig,
        chaos: Chaos | None = None,
        age_years: float = 0.5,
        banks: BankChecker | None = None,
    ) -> None:
        self.id, self.hw = device_id, hw
        self.clock, self.config = clock, config
        self.seed = seed
        self.sensor_rng = child_rng(seed, 0)
        self.platform = SimPlatform((config.layout, lambda: child_rng(seed, 1)), clock, battery, pool, latency_us)
        self.agent = _agent.Device(
            device_id, hw, trusted_keys, self.platform,
            telemetry_period_s=config.telemetry_period_s, broker_timeout_ms=config.broker_timeout_s * 1000,
            battery_retry_ms=config.battery_retry_s * 1000, session_expiry_s=config.session_expiry_s,
        )  # fmt: skip
        self.banks = banks or BankChecker.of_der(trusted_keys)
        self.profile = profile
        self.age0 = age_years
        self._ageing: tuple[float, float, float] | None = None  # (from simulated s, years, over s)
        self.sense_epoch_ms = 0  # the sensor's time of day counts from here
        self.chaos = chaos or Chaos()
        self.net = NetFaults(self.chaos.net, lambda: child_rng(seed, 2))
        self._fault_rng: np.random.Generator | None = None
        self.log = DeviceLog()
        self.link: Link | None = None
        self.powered = False
        self.boot_at_ms: int | None = None
        self.reconnect_at_ms: int | None = None
        self.next_sense_ms = 0
        self._tokens: dict[int, int] = {}
        self._report_mids: dict[int, tuple[int, int]] = {}  # mid -> (epoch, seq) of a state report
        self._delayed: list[tuple[int, int, str, bytes]] = []  # (due ms, order, topic, payload)
        self._order = 0
        self._was_active = False
        self._crc_valid_corruptions = 0

    @property
    def fault_rng(self) -> np.random.Generator:
        if self._fault_rng is None:
            self._fault_rng = child_rng(self.seed, 3)
        return self._fault_rng

    # --- lifecycle ----------------------------------------------------------------------------------------

    def attach(self, loop: object, creds: Credentials, stats: LinkStats) -> None:
        self.link = Link(loop, creds, self, stats)  # type: ignore[arg-type]

    def provision(self, factory_bundle: bytes) -> None:
        self.agent.provision(factory_bundle)
        self.boot_at_ms = self.clock.ms

    @property
    def age_years(self) -> float:
        if self._ageing is None:
            return self.age0
        start_s, years, over_s = self._ageing
        return self.age0 + years * min(1.0, max(0.0, (self.clock.seconds - start_s) / over_s))

    def age(self, years: float, over_s: float) -> None:
        """Age the sensor by `years`, linearly over the next `over_s` simulated seconds, then keep it that old."""
        self.age0, self._ageing = self.age_years, (self.clock.seconds, years, over_s)

    def restart_sensing(self, stream: int) -> None:
        """Start the sensor's noise and its time of day afresh at this simulated instant, the next window one tick
        from now. A chaos episode that compares drift scores calls this at a telemetry boundary, so the windows
        it reads hold the same samples for the same seed however long the world took to get there."""
        self.sensor_rng = np.random.default_rng([self.seed, stream])
        self.sense_epoch_ms = self.next_sense_ms = self.clock.ms

    @property
    def state(self) -> str:
        return self.agent.state if self.log.boots else "OFF"

    @property
    def running_digest(self) -> bytes:
        return self.agent.running_digest

    def power_on(self) -> None:
        self.boot_at_ms = None
        self.platform.boot_ms = self.clock.ms
        self.log.boots += 1
        try:
            actions = self.agent.boot()
        except PowerCut:
            self._power_lost()
            return
        except ValueError as e:  # boot selection found no verified image
            self.log.bricked = str(e)
            return
        try:
            image = self.platform.find_image(self.agent.running_digest)
        except RuntimeError as e:
            self.log.bricked = str(e)
            return
        self.platform.image = image
        self.check_bank(image.digest, f"boot {self.log.boots}")
        if image.firmware.crashes_at_boot:
            self.log.crashes += 1
            if self.log.crashes > MAX_CRASH_LOOP:
                self.log.bricked = f"image {image.bundle_id} crashes at every boot"
                return
            self.boot_at_ms = self.clock.ms + image.firmware.boot_ms  # watchdog reset, no agent run
            return
        self.powered = True
        self._connect()
        self._perform(actions)

    def check_bank(self, reported: bytes, when: str) -> str | None:
        """Check the booted bank in Python against the bundle `reported` (its digest), independently of the
        agent's own verification (bank_check.py); the device's first problem stays in its log."""
        image = self.platform.image
        if image is None:
            return None
        problem = self.banks.problem(lambda off, n: self.platform.flash_read(image.bank, off, n), reported, self.hw,
                                     self.id)  # fmt: skip
        if problem is not None and self.log.bank_problem is None:
            self.log.bank_problem = f"{when}, bank {image.bank}: {problem}"
        return problem

    def _connect(self) -> None:
        self.reconnect_at_ms = None
        assert self.link is not None
        kind, topic, payload, qos, retain, _tok = self.agent.will()
        clean_start, session_expiry_s = self.agent.connect_options()
        if not self.link.connect((topic, payload, qos, retain), clean_start, session_expiry_s):
            self.reconnect_at_ms = self.clock.ms + self.config.reconnect_ms

    def _power_lost(self) -> None:
        self.log.power_cuts += 1
        self.powered = False
        self._tokens.clear()
        self._report_mids.clear()
        self._delayed.clear()
        if self.link is not None:
            self.link.close(graceful=False)
        self.boot_at_ms = self.clock.ms + OFF_AFTER_CUT_MS

    def _reboot(self) -> None:
        self.powered = False
        self._tokens.clear()
        self._report_mids.clear()
        self._delayed.clear()
        if self.link is not None:
            self.link.close(graceful=True)
        self.boot_at_ms = self.clock.ms + 200

    def power_cut_now(self) -> None:
        """An outside power cut (no flash operation in progress)."""
        if self.powered:
            self._power_lost()

    # --- events into the core -----------------------------------------------------------------------------

    def _run(self, fn: object, *args: object) -> None:
        if not self.powered:
            return
        try:
            actions = fn(*args)  # type: ignore[operator]
        except PowerCut:
            self._power_lost()
            return
        self._perform(actions)
        self._arm_cuts()

    def _arm_cuts(self) -> None:
        """Arm the next scheduled power cut when an update starts writing flash."""
        active = self.agent.state in ACTIVE_STATES
        if active and not self._was_active and self.chaos.cut_at_ops and not self.platform.cut_armed:
            self.platform.arm_cut(self.chaos.cut_at_ops.pop(0))
        self._was_active = active

    def _perform(self, actions: list[tuple[str, str, bytes, int, bool, int]]) -> None:
        for kind, topic, payload, qos, retain, token in actions:
            if not self.powered:
                return
            if kind == "subscribe":
                self.link.subscribe(topic, qos)  # type: ignore[union-attr]
            elif kind == "resubscribe":
                self.link.subscribe(topic, qos, retain_handling=1)  # type: ignore[union-attr]
            elif kind == "unsubscribe":
                self.link.unsubscribe(topic)  # type: ignore[union-attr]
            elif kind == "publish":
                self._publish(topic, payload, qos, retain, token)
            elif kind == "run_health_check":
                self._run(self.agent.run_health_check)
            elif kind == "reboot":
                self._reboot()
                return

    def _publish(self, topic: str, payload: bytes, qos: int, retain: bool, token: int) -> None:
        assert self.link is not None
        if topic.endswith("/state"):
            r = self.log.reports.add(payload)
        elif topic.endswith("/telemetry"):
            self.log.telemetry += 1
        mid = self.link.publish(topic, payload, qos, retain)
        if mid is not None and token:
            self._tokens[mid] = token
        if mid is not None and topic.endswith("/state"):
            self._report_mids[mid] = (r.epoch, r.seq)
        if mid is not None and topic.endswith("/state") and self.net.duplicate_publish():
            self.link.publish(topic, payload, qos, retain)  # the same report twice on the wire

    # LinkEvents

    def on_link_up(self, session_present: bool) -> None:
        self._run(self.agent.on_connection_up, session_present)

    def on_link_down(self) -> None:
        if not self.powered:
            return
        self._tokens.clear()
        self._report_mids.clear()
        self._run(self.agent.on_connection_down)
        if self.powered and self.reconnect_at_ms is None:
            self.reconnect_at_ms = self.clock.ms + self.config.reconnect_ms

    def on_link_message(self, topic: str, payload: bytes) -> None:
        if "/blobs/" in topic:
            self.log.block_topics.add(topic)
        fate, delay = self.net.inbound()
        if fate is Fate.DROP_CONNECTION:
            assert self.link is not None
            self.link.close(graceful=False)
            self.on_link_down()
            return
        payload = self._maybe_corrupt(topic, payload)
        if fate is Fate.DELAY:
            self._order += 1
            self._delayed.append((self.clock.ms + delay, self._order, topic, payload))
            return
        self._run(self.agent.on_message, topic, payload)
        if fate is Fate.DUPLICATE:
            self._run(self.agent.on_message, topic, payload)

    def on_link_puback(self, mid: int) -> None:
        key = self._report_mids.pop(mid, None)
        if key is not None:
            self.log.acked_reports.add(key)
        token = self._tokens.pop(mid, None)
        if token is not None:
            self._run(self.agent.on_publish_acked, token)

    def _maybe_corrupt(self, topic: str, payload: bytes) -> bytes:
        if self.chaos.corrupt_block <= 0 or "/blobs/" not in topic or len(payload) <= 20:
            return payload
        if self.fault_rng.random() >= self.chaos.corrupt_block:
            return payload
        self.log.corrupted_blocks += 1
        data = bytearray(payload)
        pos = 20 + int(self.fault_rng.integers(0, len(data) - 20))
        data[pos] ^= 1 << int(self.fault_rng.integers(0, 8))
        if self._crc_valid_corruptions < self.chaos.crc_valid_corruptions:  # damage only SHA-256 can see
            self._crc_valid_corruptions += 1
            data[16:20] = zlib.crc32(bytes(data[20:])).to_bytes(4, "little")
        return bytes(data)

    # --- time ---------------------------------------------------------------------------------------------

    def tick(self, dt_ms: int) -> None:
        """One step of simulated time: battery, delayed messages, reconnects, sensing, the agent's tick."""
        now = self.clock.ms
        self.platform.battery.advance(self.clock.seconds, dt_ms / 1000)
        if self.boot_at_ms is not None and now >= self.boot_at_ms:
            self.power_on()
            return
        if not self.powered:
            return
        if self.reconnect_at_ms is not None and now >= self.reconnect_at_ms:
            self._connect()
        if self._delayed:
            due = sorted(m for m in self._delayed if m[0] <= now)
            self._delayed = [m for m in self._delayed if m[0] > now]
            for _due, _o, topic, payload in due:
                if self.link is not None and self.link.connected:
                    self._run(self.agent.on_message, topic, payload)
        if now >= self.next_sense_ms:
            self.next_sense_ms = now + int(self.config.sense_period_s * 1000)
            self.sense()
        if self.agent.state == AgentState.DEFERRED.name:
            self._run(self.agent.on_battery, self.platform.battery.pct())
        self._run(self.agent.on_tick)

    def sense(self) -> None:
        """One window from the sensor through calibration and the feature extractor (both the device's C++) and
        the model."""
        if (not self.powered or self.platform.image is None or self.agent.channel_count != 3
                or self.agent.feature_extractor is None):  # fmt: skip
            return
        try:
            t_s = (self.clock.ms - self.sense_epoch_ms) / 1000
            raw, temp = sensors.read_window(self.sensor_rng, self.profile, t_s, self.age_years)
            self.agent.on_temperature(temp)
            self.agent.on_samples(raw.astype("<i2").tobytes())
            # The device's own preprocessing: the C++ feature extractor the running bundle names, over the
            # agent's sample ring in place (the Python copy in tinyfleet.bundles.features is the gate's reference).
            out, latency, _ram = self.platform.infer(self.agent.extract_features(), 4)
            self.agent.on_inference(out, latency)
        except PowerCut:
            self._power_lost()
