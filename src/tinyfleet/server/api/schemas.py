"""Request and response bodies (one family per resource: XCreate, XPublic)."""

from __future__ import annotations

from base64 import b64decode
from re import Pattern
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    computed_field,
    create_model,
    field_validator,
)

from tinyfleet.bundles import Calibration, Deployment, Thresholds
from tinyfleet.bundles.release import ReleaseField, deployment_parts, release_fields
from tinyfleet.protocol.topics import DEVICE_ID_RE, DEVICE_ID_RULE
from tinyfleet.server.services.device_batches import MAX_BATCH
from tinyfleet.server.services.devices import CLASS_RE, MAX_TAGS, TAG_KEY_RE, TAG_VALUE_RE
from tinyfleet.server.services.errors import BadRequest
from tinyfleet.server.services.rollouts import stage_from_json, validate_stages
from tinyfleet.server.services.signing_keys import KEY_ID_RE
from tinyfleet.server.services.tokens import NAME_RE

Role = Literal["viewer", "operator", "admin"]


def whole(rule: Pattern[str]) -> str:
    """A full-match rule as a JSON Schema pattern: anchored at both ends (`$` there, as in pydantic's regex
    engine, matches only at the very end, never before a trailing newline)."""
    return f"^(?:{rule.pattern})$"


def rule(regex: Pattern[str], what: str, spelled: str) -> Any:
    """A string matching `regex` whole: an anchored pattern in the schema, and refused with a message naming the
    value and the rule (`tag name 'Bad' must be 1-32 of a-z 0-9 _ -`)."""

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{what} {value!r} must be {spelled}")
        return value

    return Annotated[str, AfterValidator(check), WithJsonSchema({"type": "string", "pattern": whole(regex)})]


DeviceId = rule(DEVICE_ID_RE, "device id", DEVICE_ID_RULE)
TagName = rule(TAG_KEY_RE, "tag name", "1-32 of a-z 0-9 _ -")
TagValue = rule(TAG_VALUE_RE, "tag value", "1-64 of A-Z a-z 0-9 . _ : + -")
TokenName = rule(NAME_RE, "token name", "1-64 of A-Z a-z 0-9 . _ @ - (a letter or digit first)")
KeyId = rule(KEY_ID_RE, "key id", "16 lowercase hex digits (fleetctl keys show KEY.pem)")
# The hardware profiles this server knows are added to /openapi.json as an enum when it is served (api/app.py).
HardwareClass = rule(CLASS_RE, "hardware class", "1-32 of a-z 0-9 _ -")
# A JSON object of tags: every name matching TagName (patternProperties alone would let other names through).
TAG_OBJECT = {"propertyNames": {"pattern": whole(TAG_KEY_RE)}, "additionalProperties": False}
# Standard base64 with its padding, at least one byte of data: what `b64decode(..., validate=True)` takes.
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$"


def tags_field(description: str, **kwargs: Any) -> Any:
    return Field(default_factory=dict, max_length=MAX_TAGS, description=description, json_schema_extra=TAG_OBJECT,
                 **kwargs)  # fmt: skip


class ErrorOut(BaseModel):
    detail: str = Field(description="One line naming the problem")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": desc}
    for code, desc in {
        400: "Bad request",
        401: "Missing or invalid token",
        403: "The token's role does not allow this",
        404: "Not found",
        409: "Conflicts with the current state",
        422: "Invalid input: the detail names the field and the rule",
    }.items()
}
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "The body is above the server's limit (max_request_bytes)"}
}
BROKER_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorOut, "description": "The broker did not take the change; nothing was changed"}
}


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- devices ---------------------------------------------------------------------------------------------


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: DeviceId = Field(description=f"{DEVICE_ID_RULE}, not one of the server's own broker users",
                         examples=["sensor-0001"])  # fmt: skip
    hardware_class: HardwareClass = Field(description="A hardware profile the server knows", examples=["stm32l4"])
    tags: dict[TagName, TagValue] = tags_field("Tag names 1-32 of a-z 0-9 _ -, values 1-64 of A-Z a-z 0-9 . _ : + -",
                                               examples=[{"site": "plant-a", "temp": "hot"}])  # fmt: skip


class DeviceBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    devices: list[DeviceCreate] = Field(
        min_length=1, max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} devices, each id once, none registered yet: all are provisioned or none",
    )  # fmt: skip


class DeviceTagsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    set: dict[TagName, TagValue] = tags_field(
        f"Tags to add or change (as a provisioning request's tags); a device holds at most {MAX_TAGS} tags, so a "
        "change that would leave more is refused with 409", examples=[{"site": "b"}]
    )
    remove: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS, description="Tag names to remove")


class DeviceReportPublic(_Out):
    """One state report as the server stored it (docs/device-protocol.md, "State report")."""

    epoch: int
    seq: int
    state: str = Field(description="to_state of the report")
    reason: str | None
    bundle_id: str | None = Field(description="the bundle the report says the device runs, if the server knows it")
    received_at: float


class TelemetryChannel(BaseModel):
    mean: float = Field(description="the window's mean of calibrated input")
    std: float = Field(description="the window's standard deviation of calibrated input")


class TelemetryWindowPublic(_Out):
    """One telemetry window as figures (docs/device-protocol.md, "Telemetry")."""

    epoch: int
    seq: int
    received_at: float
    window_start: int
    bundle_id: str | None
    inferences: int
    alarms: int
    latency_p99_us: int | None
    confidence_hist: list[int]
    channels: list[TelemetryChannel]


class DevicePublic(_Out):
    id: str
    hardware_class: str
    tags: dict[str, str]
    created_at: float
    online: bool
    last_seen: float | None
    running_bundle: str | None
    state: str | None
    state_reason: str | None
    desired_bundle: str | None
    desired_seq: int = Field(description="seq of the device's retained desired state (its reports carry the one "
                             "they act on)")


class BrokerCredentials(BaseModel):
    host: str
    port: int
    tls: bool
    ca_pem: str | None = Field(default=None, description="with TLS: the CA certificates (PEM, one after another: "
                               "during a CA rotation the current and the next one) the device verifies the "
                               "broker's certificate with")  # fmt: skip
    username: str
    password: str
    client_id: str


class DeviceProvisioned(BaseModel):
    device: DevicePublic
    broker: BrokerCredentials


class DeviceBatchProvisioned(BaseModel):
    devices: list[DeviceProvisioned] = Field(description="in the request's order")


# --- tokens ----------------------------------------------------------------------------------------------


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: TokenName
    role: Role


class TokenPublic(_Out):
    name: str
    role: str
    created_at: float
    revoked_at: float | None


class TokenCreated(BaseModel):
    token: TokenPublic
    secret: str = Field(description="The bearer token; shown only here")


# --- audit -----------------------------------------------------------------------------------------------


class AuditPublic(_Out):
    id: int
    at: float
    actor: str
    action: str
    target: str
    result: str
    detail: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    broker: bool
    schema_revision: str | None


# --- bundles ---------------------------------------------------------------------------------------------


class ComponentPublic(BaseModel):
    type: str
    version: str
    offset: int
    length: int
    sha256: str


class BundlePublic(_Out):
    bundle_id: str
    digest: str = Field(description="SHA-256 of bytes [0, payload_offset): the bundle's MQTT address")
    hardware_class: str
    device_scope: str | None
    security_counter: int
    created: int
    expires: int | None
    rollback_target: str | None
    size: int
    status: str
    components: list[ComponentPublic]
    uploaded_at: float
    uploaded_by: str
    gate_report: dict[str, Any]
    grants_keys: list[str] = Field(description="Key ids this bundle's firmware adds to a device's trusted keys")


class BundleDetail(BundlePublic):
    manifest: dict[str, Any]


class BundleRetired(BaseModel):
    bundle: BundlePublic
    blocks_cleared: int


# --- rollouts --------------------------------------------------------------------------------------------


class InstallGateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_successes: int = Field(default=1, ge=0, le=1_000_000)
    max_failure_rate: float = Field(default=0.0, ge=0, le=1)
    soak_s: float = Field(default=0.0, ge=0, le=30 * 86400)
    install_timeout_s: float | None = Field(default=None, gt=0, le=30 * 86400)


class BehaviourGateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_alarm_rate_increase: float | None = Field(default=None, ge=0, le=1)
    max_confidence_shift: float | None = Field(default=None, ge=0, le=1)
    max_drift: float | None = Field(default=None, gt=0, le=1000)
    min_inferences: int = Field(default=100, ge=1, le=10**9)


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    percent: float = Field(gt=0, le=100)
    install: InstallGateIn = Field(default_factory=InstallGateIn)
    behaviour: BehaviourGateIn = Field(default_factory=BehaviourGateIn)


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hardware_class: str | None = Field(default=None, max_length=32)
    tags: dict[TagName, TagValue] = tags_field("Only devices with all of these tags")
    device_ids: list[str] = Field(default_factory=list, max_length=100_000)
    skip_busy: bool = Field(
        default=False, description="Leave out devices already in an active rollout instead of refusing (409)"
    )


class RolloutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle_id: str = Field(min_length=1, max_length=64)
    target: TargetIn = Field(default_factory=TargetIn)
    stages: list[StageIn] = Field(
        default_factory=lambda: [StageIn(percent=p) for p in (1, 10, 50, 100)],
        min_length=1,
        max_length=10,
        description="Cumulative percentages, each above the one before, the last one 100 (JSON Schema cannot say "
        "this across items: a list that breaks it is refused with 422 naming the stage)",
    )
    stratify_by: list[TagName] | None = Field(
        default=None, max_length=MAX_TAGS, description="Tag names; default: every tag name present"
    )
    rollback_on_halt: bool = True
    allow_untrusted_key: bool = Field(
        default=False, description="Roll out although target devices are not known to trust the bundle's key"
    )

    @field_validator("stages")
    @classmethod
    def _rise_to_100(cls, stages: list[StageIn]) -> list[StageIn]:
        try:
            validate_stages([stage_from_json(s.model_dump()) for s in stages])
        except BadRequest as exc:
            raise ValueError(exc.message) from exc
        return stages


class KeyPublic(BaseModel):
    key_id: str
    server_trusts: bool = Field(description="The server accepts uploads signed by this key")
    bundles_signed: list[str]
    devices_trusting: int = Field(description="Devices known to trust it: they run a bundle signed by it or "
                                  "whose firmware adds it")
    devices_unknown: int = Field(description="Devices running a bundle the server does not hold (keys unknown)")


class RolloutCounts(BaseModel):
    pending: int
    assigned: int
    succeeded: int
    failed: int
    rolled_back: int


class RolloutPublic(_Out):
    id: int
    bundle_id: str
    state: str
    stage_index: int = Field(description="Index of the current stage in `stages`, from 0 (see stage_number)")
    stages: list[dict[str, Any]]
    target: dict[str, Any]
    rollback_on_halt: bool
    reason: str | None
    waiting_for: str | None
    created_at: float
    updated_at: float
    created_by: str

    @computed_field(description="The current stage as people count it, from 1: what fleetctl and messages say")
    def stage_number(self) -> int:
        return self.stage_index + 1


class RolloutStatus(BaseModel):
    rollout: RolloutPublic
    counts: RolloutCounts
    failures: dict[str, int] = Field(
        default_factory=dict,
        description="Every device that failed in this rollout (also those rolled back since), by reason code",
    )


class RolloutDevicePublic(_Out):
    device_id: str
    stratum: str
    stage: int | None = Field(description="Index in `stages` of the stage that took the device, from 0")
    status: str
    reason: str | None
    failure: str | None = Field(description="Reason code of the device's failure, kept after a rollback")
    previous_bundle: str | None
    assigned_at: float | None
    finished_at: float | None

    @computed_field(description="The stage that took the device, from 1 (None: not yet)")
    def stage_number(self) -> int | None:
        return None if self.stage is None else self.stage + 1


# --- drift -----------------------------------------------------------------------------------------------


class DriftPublic(_Out):
    device_id: str
    bundle_id: str
    computed_at: float
    score: float
    alert: bool
    channels: list[dict[str, float]]
    reference: list[dict[str, float]] = Field(
        description="The device's first telemetry window on this bundle, per channel: mean and std (calibrated)"
    )
    shift: float = Field(
        description="Largest per-channel move of the newest window's mean since the reference window, in the "
        "reference window's standard deviations (above 1: the sensor's input changed)"
    )
    shift_alert: bool = Field(description="shift above the server's drift_shift_threshold")


CalibrationTarget = Literal["reference", "baseline"]


class CalibrationProposal(BaseModel):
    device_id: str
    base_bundle: str
    security_counter: int = Field(description="The base bundle's counter + 1")
    drift_score: float
    against: CalibrationTarget = Field(
        description="reference: back to the device's own first window on the bundle; baseline: onto the "
        "bundle's validation baseline"
    )
    target: list[dict[str, float]] = Field(description="Per channel, the calibrated {mean, std} restored")
    calibration: dict[str, Any] = Field(description="Calibration JSON for `fleetctl bundle build --calibration`")
    note: str


class ChannelSummary(BaseModel):
    samples: float
    mean: float = Field(description="Calibrated units")
    std: float


class CohortPublic(BaseModel):
    bundle_id: str
    cohort: dict[str, str]
    devices: int
    windows: int
    inferences: int
    alarm_rate: float
    confidence_hist: list[int]
    channels: list[ChannelSummary]
    drift_alerts: int
    max_drift: float | None


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=31)
    data_base64: str = Field(pattern=BASE64, description="The file's bytes, standard base64 with padding")


def _api_field(kind: Any, spec: ReleaseField, default: Any) -> tuple[Any, Any]:
    """A release field as the build request takes it: JSON for thresholds and calibration, lists for tuples."""
    if kind in (Thresholds, Calibration):
        kind = dict[str, Any]
    elif kind == tuple[str, ...]:
        kind = list[str]
    if isinstance(default, tuple):
        return kind, Field(default_factory=list, description=spec.help, **spec.bounds)
    return kind, Field(default, description=spec.help, **spec.bounds)


DeploymentIn: type[BaseModel] = create_model(
    "DeploymentIn",
    __config__=ConfigDict(extra="forbid"),
    **{spec.api or name: _api_field(kind, spec, default) for name, kind, spec, default in deployment_parts()},
)


def _release_in() -> type[BaseModel]:
    """The release fields of the build request, made from their declaration (tinyfleet.bundles.release): a
    file and its version travel together as a PartIn, the deployment as a DeploymentIn."""
    specs: dict[str, Any] = {}
    for _name, kind, spec, default in release_fields():
        if spec.api is None:
            continue
        key, dot, _inner = spec.api.partition(".")
        if dot:
            specs[key] = (PartIn, ...)
        elif kind is Deployment:
            specs[key] = (DeploymentIn, Field(description=spec.help))
        else:
            specs[key] = _api_field(kind, spec, default)
    return create_model("ReleaseIn", __config__=ConfigDict(extra="forbid"), **specs)


class BundleBuild(_release_in()):  # type: ignore[misc]
    """The parts of `fleetctl bundle build`, built and signed by the server with its signing key."""

    hardware_class: HardwareClass = Field(description="A hardware profile the server knows")
    validation_set_base64: str = Field(pattern=BASE64, description=".npz with inputs and labels, standard base64")

    def release_values(self) -> dict[str, Any]:
        """The release fields as ReleaseParts.from_values takes them (binascii.Error or ValueError when a
        file's base64 is not valid)."""
        values: dict[str, Any] = {}
        for name, kind, spec, _default in release_fields():
            if spec.api is None:
                continue
            key, dot, inner = spec.api.partition(".")
            value = getattr(self, key)
            if dot:
                value = getattr(value, inner)
                value = b64decode(value, validate=True) if kind is bytes else value
            elif isinstance(value, BaseModel):
                value = value.model_dump()
            values[name] = value
        return values


class CalibrationBundleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle_id: str = Field(min_length=1, max_length=64, description="Id of the new calibration-only bundle")
    per_device: bool = Field(default=True, description="Scope the bundle to this device (device_scope)")
    against: CalibrationTarget = Field(default="reference", description="As the calibration proposal's `against`")


# --- the broker's CA (rotation) --------------------------------------------------------------------------


class CaAnchorPublic(_Out):
    fingerprint: str = Field(description="SHA-256 of the certificate's DER, hex")
    subject: str
    not_after: float
    role: Literal["current", "next", "previous"] = Field(
        description="current: it issued the certificate the broker serves; next: added, the broker is not "
        "switched to it yet; previous: the broker served one from it before the switch, still handed out"
    )
    devices: int = Field(description="devices handed it with their credentials")


class CaStatusPublic(_Out):
    phase: Literal["steady", "added", "switched"]
    anchors: list[CaAnchorPublic]
    devices: int
    lacking: int = Field(description="devices not handed the newest CA (next during a rotation, else current)")
    lacking_sample: list[str] = Field(description="the first of those devices, by id")
    broker_certificate: str | None = Field(description="fingerprint of the certificate the broker presents now")


class CaAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ca_pem: str = Field(max_length=65536, description="one CA certificate, PEM")


class CaSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cert_file: str = Field(max_length=4096, description="absolute path on the server's host: the broker's "
                           "certificate, then any intermediates, PEM")  # fmt: skip
    key_file: str = Field(max_length=4096, description="absolute path on the server's host: its private key, "
                          "PEM, unencrypted (it never crosses the API)")  # fmt: skip
    force: bool = Field(default=False, description="switch although devices were not handed the new CA")


class CaStepOut(BaseModel):
    result: str = Field(description="what the step did, or that it had nothing to do")
    status: CaStatusPublic
