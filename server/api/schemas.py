"""Request and response bodies (one family per resource: XCreate, XPublic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "operator", "admin"]


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
        413: "Body too large",
        422: "Invalid input",
    }.items()
}


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- devices ---------------------------------------------------------------------------------------------


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, examples=["sensor-0001"])
    hardware_class: str = Field(min_length=1, max_length=32, examples=["stm32l4"])
    tags: dict[str, str] = Field(default_factory=dict, examples=[{"site": "plant-a", "temp": "hot"}])


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


class BrokerCredentials(BaseModel):
    host: str
    port: int
    tls: bool
    username: str
    password: str
    client_id: str


class DeviceProvisioned(BaseModel):
    device: DevicePublic
    broker: BrokerCredentials


# --- tokens ----------------------------------------------------------------------------------------------


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
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
