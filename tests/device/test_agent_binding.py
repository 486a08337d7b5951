"""One emulated device through a whole update with the real agent core (tinyfleet._agent).

The platform is Python: NOR flash that refuses writes to bytes that are not erased, a battery, clocks, and
inference through TFLite Micro on the sample INT8 model. Bundles are built and signed with
tinyfleet.bundles; desired state and blocks are encoded by the server's codec; an in-memory broker keeps
retained messages and delivers them on SUBSCRIBE, exactly as Mosquitto would to one client.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import queue
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion
from tflite_micro import runtime

from tinyfleet import _agent
from tinyfleet.bundles import features
from tinyfleet.bundles.builder import build_bundle
from tinyfleet.bundles.components import Calibration, ComponentType, HealthVectors, Thresholds
from tinyfleet.bundles.format import Bundle, bundle_digest, parse_meta
from tinyfleet.bundles.gate.tflm_run import arena_used
from tinyfleet.bundles.manifest import Deployment, DType, Manifest, ModelContract, Provenance, TensorSpec
from tinyfleet.bundles.signing import generate_private_key, public_der
from tinyfleet.protocol import records, topics
from tinyfleet.protocol.codes import STATE_NAMES
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.workers.broker_process import EmbeddedBroker
from tinyfleet.simulator.flash import FlashLayout, SparseNorFlash

from ..server.srv_mqtt_client import Received, TestClient

SAMPLE = Path(__file__).resolve().parents[2] / "models" / "sample"
DEVICE = "dev-0042"
SECTOR = 4096
BANK_SECTORS = 64
ARENA = 64 * 1024


class Platform(SparseNorFlash):
    """Flash (fleet-sim's: the NOR model through Python callbacks), battery, clocks and the model: TFLite Micro
    running the installed INT8 model."""

    def __init__(self, model: bytes) -> None:
        super().__init__(FlashLayout(sector=SECTOR, bank_sectors=BANK_SECTORS), np.random.default_rng(0))
        self.interp = runtime.Interpreter.from_bytes(model, arena_size=ARENA)
        self.arena = arena_used(runtime.Interpreter.from_bytes(model, arena_size=ARENA))
        self.battery = 90
        self.now = 1_790_000_000
        self.ms = 0
        self.inferences = 0

    def battery_pct(self) -> int:
        return self.battery

    def unix_seconds(self) -> int:
        return self.now

    def monotonic_ms(self) -> int:
        return self.ms

    def infer(self, data: bytes, output_len: int) -> tuple[bytes, int, int]:
        d = self.interp.get_input_details(0)
        x = np.frombuffer(data, dtype=d["dtype"]).reshape(d["shape"])
        t = time.perf_counter()
        self.interp.set_input(x, 0)
        self.interp.invoke()
        out = np.ascontiguousarray(self.interp.get_output(0)).tobytes()
        self.inferences += 1
        return out, int((time.perf_counter() - t) * 1e6), self.arena


class Broker:
    """Retained messages delivered on SUBSCRIBE; every subscription and publish recorded."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.subs: set[str] = set()
        self.subscribed: list[str] = []
        self.reports: list[records.StateReport] = []
        self.telemetry: list[records.Telemetry] = []
        self.presence: list[records.Presence] = []


class Session:
    """Connects one device to the broker and performs its actions in order."""

    def __init__(self, dev: _agent.Device, broker: Broker) -> None:
        self.dev, self.broker = dev, broker
        self.inbox: deque[tuple[str, bytes]] = deque()
        self.connected = False
        self.rebooting = False

    def perform(self, actions: list[tuple[str, str, bytes, int, bool, int]]) -> None:
        acks = []
        for kind, topic, payload, _qos, retain, token in actions:
            if kind == "subscribe" and self.connected:
                self.broker.subs.add(topic)
                self.broker.subscribed.append(topic)
                if topic in self.broker.retained:
                    self.inbox.append((topic, self.broker.retained[topic]))
            elif kind == "unsubscribe":
                self.broker.subs.discard(topic)
            elif kind == "publish" and self.connected:
                if topic.endswith("/state"):
                    self.broker.reports.append(records.decode_report(payload))
                    acks.append(token)
                elif topic.endswith("/telemetry"):
                    self.broker.telemetry.append(records.decode_telemetry(payload))
                elif topic.endswith("/presence"):
                    self.broker.presence.append(records.decode_presence(payload))
                if retain:
                    self.broker.retained[topic] = payload
            elif kind == "run_health_check":
                self.perform(self.dev.run_health_check())
            elif kind == "reboot":
                self.rebooting = True
        for token in acks:
            self.perform(self.dev.on_publish_acked(token))

    def pump(self) -> None:
        while self.inbox and self.connected and not self.rebooting:
            topic, payload = self.inbox.popleft()
            if topic in self.broker.subs:
                self.perform(self.dev.on_message(topic, payload))

    def boot(self) -> None:
        self.connected, self.rebooting = False, False
        self.inbox.clear()
        self.broker.subs.clear()
        self.perform(self.dev.boot())

    def connect(self) -> None:
        self.connected = True
        self.perform(self.dev.on_connection_up())
        self.pump()


def make_bundle(
    key: ec.EllipticCurvePrivateKey, platform: Platform, model: bytes, *, seed: int, counter: int, cal_offset: int
) -> bytes:
    interp = platform.interp
    di, do = interp.get_input_details(0), interp.get_output_details(0)

    def spec(d: dict) -> TensorSpec:
        q = d["quantization_parameters"]
        return TensorSpec(
            tuple(int(v) for v in d["shape"]), DType.INT8, float(q["scales"][0]), int(q["zero_points"][0])
        )

    val = np.load(SAMPLE / "val.npz")
    xs = val[val.files[0]][:4].astype(np.int8)
    vectors = []
    for x in xs:
        out, _, _ = platform.infer(np.ascontiguousarray(x.reshape(di["shape"])).tobytes(), 4)
        vectors.append((np.ascontiguousarray(x).tobytes(), out))
    hv = HealthVectors(len(vectors[0][0]), len(vectors[0][1]), tuple(vectors))
    cal = Calibration.from_json(json.loads((SAMPLE / "calibration.json").read_text()))
    cal = Calibration(cal.sample_rate_hz, tuple(dataclasses.replace(c, offset=cal_offset) for c in cal.channels))
    thresholds = Thresholds.from_json(json.loads((SAMPLE / "thresholds.json").read_text()))
    manifest = Manifest(
        bundle_id=f"vibration-binding-{seed}",
        hardware_class="esp32s3",
        security_counter=counter,
        created=1_780_000_000,
        deployment=Deployment(min_battery_pct=30, max_latency_ms=1000, peak_ram_bytes=ARENA),
        model=ModelContract(spec(di), spec(do), features.VERSION, ARENA),
        provenance=Provenance(hashlib.sha256(b"report").digest()),
    )
    firmware = hashlib.sha256(f"firmware {seed}".encode()).digest() * 400  # 12.8 KB: 4 blocks
    return build_bundle(
        manifest,
        {
            ComponentType.FIRMWARE: (f"fw-{seed}", firmware),
            ComponentType.MODEL: ("1", model),
            ComponentType.THRESHOLDS: ("1", thresholds.encode()),
            ComponentType.CALIBRATION: (str(seed), cal.encode()),
            ComponentType.HEALTH_VECTORS: ("1", hv.encode()),
        },
        key,
    )


def publish(broker: Broker, bundle: bytes, desired_seq: int) -> tuple[bytes, Bundle]:
    """What the server does: every component's blocks, the meta, then the desired state (all retained)."""
    meta = parse_meta(bundle)
    poff = struct.unpack_from("<I", bundle, 20)[0]
    for c in meta.components:
        payload = bundle[c.offset : c.offset + c.length]
        for n in range(records.block_count(c.length)):
            broker.retained[f"fleet/blobs/{c.sha256.hex()}/b/{n}"] = records.encode_block(n, payload)
    digest = bundle_digest(bundle)
    broker.retained[f"fleet/bundles/{digest.hex()}/meta"] = bundle[:poff]
    broker.retained[topics.desired(DEVICE)] = records.encode_desired(desired_seq, digest, len(bundle))
    return digest, meta


@pytest.fixture(scope="module")
def model() -> bytes:
    return (SAMPLE / "vibration_int8.tflite").read_bytes()


@pytest.mark.parametrize("flash", ["python", "cpp-emulator"])
def test_one_device_through_a_whole_update(model: bytes, flash: str) -> None:
    key = generate_private_key()
    platform = Platform(model)
    broker = Broker()
    # fleet-sim may keep flash in C++ (the host port's NOR emulator) to run thousands of devices.
    layout = (SECTOR, BANK_SECTORS, 8, 0xFF, 2) if flash == "cpp-emulator" else None
    dev = _agent.Device(
        DEVICE, "esp32s3", [public_der(key.public_key())], platform, flash_layout=layout, telemetry_period_s=60
    )
    old = make_bundle(key, platform, model, seed=1, counter=3, cal_offset=12)
    new = make_bundle(key, platform, model, seed=2, counter=4, cal_offset=20)
    dev.provision(old)
    s = Session(dev, broker)
    s.boot()
    assert dev.state == "IDLE"
    assert dev.running_digest == bundle_digest(old)
    assert dev.channel_count == 3

    digest, meta = publish(broker, new, desired_seq=7)
    s.connect()
    assert s.rebooting, [r.reason_name for r in broker.reports]
    states = [(STATE_NAMES[r.from_state], STATE_NAMES[r.to_state], r.reason_name) for r in broker.reports]
    assert ("IDLE", "CHECKING", "None") in states
    assert ("CHECKING", "DOWNLOADING", "None") in states
    assert states[-1] == ("DOWNLOADING", "REBOOTING", "Staged")

    # Unchanged components (model, thresholds, health vectors) were copied from the active bank; only the
    # firmware and the calibration were fetched, each block once.
    fetched = [t for t in broker.subscribed if t.startswith("fleet/blobs/")]
    changed = {c.sha256.hex(): records.block_count(c.length) for c in meta.components if c.type in (1, 4)}
    assert sorted(fetched) == sorted(f"fleet/blobs/{h}/b/{n}" for h, k in changed.items() for n in range(k))
    assert dev.blocks_fetched == sum(changed.values())
    assert (platform.ops > 0) == (flash == "python")  # flash operations through the Python platform

    # Trial boot: the golden vectors run through TFLite Micro, the broker is reached, the trial confirms.
    before = platform.inferences
    s.boot()
    assert dev.state == "TRIAL"
    assert platform.inferences - before == 4
    s.connect()
    assert dev.state == "IDLE"
    assert dev.running_digest == digest
    confirmed = broker.reports[-1]
    assert (confirmed.reason_name, confirmed.desired_seq, confirmed.target_digest) == ("Confirmed", 7, digest)
    assert broker.presence[-1].security_counter == 4
    assert broker.presence[-1].hardware_class == "esp32s3"

    # The new calibration is in force: raw samples are calibrated on the device, only statistics leave it.
    raw = np.tile(np.array([120, 20, 70], dtype="<i2"), 500)
    dev.on_samples(raw.tobytes())
    frames = np.frombuffer(dev.latest_frames(2), dtype="<i2")
    want = [(((v - 20) * 64000) >> 16) for v in (120, 20, 70)] * 2
    assert frames.tolist() == want
    winner, alarm, confidence = dev.on_inference(bytes([0x73, 0x80, 0x80, 0x8D]), latency_us=900)
    assert (winner, alarm, confidence) == (0, False, 0x73 + 128)
    platform.ms += 60_000
    s.perform(dev.on_tick())
    t = broker.telemetry[-1]
    assert (t.sample_count, t.inference_count, t.latency_max_us) == (500, 1, 900)
    assert [c.mean_q8 for c in t.channels] == [v * 256 for v in want[:3]]
    assert all(c.var_q8 == 0 for c in t.channels)
    assert t.running_digest == digest

    # Rebooting the confirmed image changes nothing: the retained desired state is up to date.
    s.boot()
    s.connect()
    assert dev.state == "IDLE" and dev.running_digest == digest
    assert broker.reports[-1].reason_name == "UpToDate"


def test_the_binding_gives_the_connect_options_and_resubscribes_a_resumed_session(model: bytes) -> None:
    key = generate_private_key()
    platform = Platform(model)
    dev = _agent.Device(DEVICE, "esp32s3", [public_der(key.public_key())], platform, session_expiry_s=7200)
    dev.provision(make_bundle(key, platform, model, seed=1, counter=1, cal_offset=0))
    dev.boot()
    assert dev.connect_options() == (True, 7200)  # a boot's first connect starts a new session
    desired = ("subscribe", topics.desired(DEVICE))
    assert desired in [a[:2] for a in dev.on_connection_up()]
    dev.on_connection_down()
    assert dev.connect_options() == (False, 7200)
    assert ("resubscribe", topics.desired(DEVICE)) in [a[:2] for a in dev.on_connection_up(session_present=True)]
    dev.on_connection_down()
    assert desired in [a[:2] for a in dev.on_connection_up(session_present=False)]  # the session expired
    dev.boot()
    assert dev.connect_options() == (True, 7200)


def test_python_errors_in_the_platform_surface_as_exceptions(model: bytes) -> None:
    class Broken(Platform):
        def battery_pct(self) -> int:
            raise RuntimeError("battery gauge unplugged")

    key = generate_private_key()
    platform = Broken(model)
    dev = _agent.Device(DEVICE, "esp32s3", [public_der(key.public_key())], platform)
    dev.provision(make_bundle(key, platform, model, seed=1, counter=1, cal_offset=0))
    broker = Broker()
    s = Session(dev, broker)
    s.boot()
    publish(broker, make_bundle(key, platform, model, seed=2, counter=1, cal_offset=1), desired_seq=1)
    with pytest.raises(RuntimeError, match="battery gauge unplugged"):
        s.connect()
    with pytest.raises(ValueError, match="temperature must be within"):
        dev.on_temperature(float("nan"))
    with pytest.raises(ValueError, match="invalid device id"):
        _agent.Device("bad/id", "esp32s3", [public_der(key.public_key())], platform)


class MqttShell:
    """The device's MQTT shell over a real broker (paho, MQTT v5, clean start, presence will).

    paho's network thread only queues events; this thread feeds them to the agent one at a time, as the
    sans-I/O core requires, and performs the actions it returns.
    """

    def __init__(self, dev: _agent.Device, port: int, password: str) -> None:
        self.dev, self.port, self.password = dev, port, password
        self.events: queue.Queue[tuple[str, object]] = queue.Queue()
        self.tokens: dict[int, int] = {}
        self.client: mqtt.Client | None = None
        self.rebooting = False
        self.gone = threading.Event()

    def connect(self) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=mqtt.MQTTv5)
        c.username_pw_set(DEVICE, self.password)
        _, topic, payload, qos, retain, _ = self.dev.will()
        c.will_set(topic, payload, qos=qos, retain=retain)
        c.on_connect = lambda *_a: self.events.put(("up", None))
        c.on_message = lambda _c, _u, m: self.events.put(("message", (m.topic, bytes(m.payload))))
        c.on_publish = lambda _c, _u, mid, _rc, _p: self.events.put(("puback", mid))
        c.on_disconnect = lambda *_a: self.gone.set()
        self.gone.clear()
        c.connect("127.0.0.1", self.port, keepalive=30, clean_start=True)
        c.loop_start()
        self.client = c

    def disconnect(self) -> None:
        """A clean DISCONNECT (no will): paho's network thread must send it before the loop stops, else the
        broker sees the socket vanish and publishes the will."""
        if self.client is not None:
            self.client.disconnect()
            self.gone.wait(5)
            self.client.loop_stop()
            self.client = None

    def perform(self, actions: list[tuple[str, str, bytes, int, bool, int]]) -> None:
        assert self.client is not None
        for kind, topic, payload, qos, retain, token in actions:
            if kind == "subscribe":
                self.client.subscribe(topic, qos)
            elif kind == "unsubscribe":
                self.client.unsubscribe(topic)
            elif kind == "publish":
                info = self.client.publish(topic, payload, qos=qos, retain=retain)
                if token:
                    self.tokens[info.mid] = token
            elif kind == "run_health_check":
                self.perform(self.dev.run_health_check())
            elif kind == "reboot":
                self.rebooting = True

    def run(self, until: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not until() and not self.rebooting:
            try:
                kind, arg = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty as e:
                raise AssertionError(f"device stuck in {self.dev.state}") from e
            if kind == "up":
                self.perform(self.dev.on_connection_up())
            elif kind == "message":
                self.perform(self.dev.on_message(*arg))  # type: ignore[misc]
            elif kind == "puback" and arg in self.tokens:
                self.perform(self.dev.on_publish_acked(self.tokens.pop(arg)))  # type: ignore[arg-type]


def test_update_through_a_real_mosquitto_with_the_servers_acls(model: bytes, tmp_path: Path) -> None:
    key = generate_private_key()
    platform = Platform(model)
    dev = _agent.Device(DEVICE, "esp32s3", [public_der(key.public_key())], platform)
    old = make_bundle(key, platform, model, seed=1, counter=1, cal_offset=0)
    new = make_bundle(key, platform, model, seed=2, counter=2, cal_offset=5)
    dev.provision(old)

    broker = EmbeddedBroker(tmp_path / "broker", server_user="fleet-server", server_password="server-pw")
    broker.start({DEVICE: hash_password("device-pw")})
    server = TestClient(broker.port, "fleet-server", "server-pw")
    shell = MqttShell(dev, broker.port, "device-pw")
    try:
        assert server.wait_connected()
        server.subscribe(topics.state(DEVICE))
        server.subscribe(topics.presence(DEVICE))
        mem = Broker()
        digest, _ = publish(mem, new, desired_seq=3)
        for topic, payload in mem.retained.items():
            server.publish(topic, payload, retain=True)

        def reports() -> list[records.StateReport]:
            return [records.decode_report(m.payload) for m in server.messages if m.topic.endswith("/state")]

        dev.boot()
        shell.connect()
        shell.run(lambda: False)  # until the staged image asks for a reboot
        staged = server.wait_for(lambda m: m.topic.endswith("/state") and records.decode_report(m.payload).reason == 98)
        assert staged, [r.reason_name for r in reports()]
        shell.disconnect()

        # Reboot: a fresh agent (RAM state gone) on the trial image; its health check runs while connecting.
        shell.rebooting = False
        actions = dev.boot()
        assert dev.state == "TRIAL"
        shell.connect()
        shell.perform(actions)
        shell.run(lambda: dev.state == "IDLE")
        assert dev.running_digest == digest
        got = server.wait_for(lambda m: m.topic.endswith("/state") and records.decode_report(m.payload).reason == 99)
        assert got, [r.reason_name for r in reports()]
        presence = [records.decode_presence(m.payload) for m in server.messages if m.topic.endswith("/presence")]
        assert presence[-1].status == 1 and presence[-1].running_digest == digest

        # The will: the broker announces the device offline when it vanishes without a DISCONNECT.
        def is_offline(m: Received) -> bool:
            return m.topic.endswith("/presence") and records.decode_presence(m.payload).status == 0

        assert shell.client is not None
        earlier = len(server.wait_for(is_offline, timeout=0))  # a will from before the reboot is not this one
        shell.client._sock.close()  # type: ignore[union-attr]  # noqa: SLF001  (a power cut, not a goodbye)
        offline = server.wait_for(is_offline, timeout=90, count=earlier + 1)
        assert len(offline) > earlier and records.decode_presence(offline[-1].payload).running_digest == digest
    finally:
        shell.disconnect()
        server.close()
        broker.stop()
