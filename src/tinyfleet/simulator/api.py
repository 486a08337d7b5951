"""The fleet server's REST API (/api/v1) as fleet-sim uses it: provisioning, bundles, rollouts, device views."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(RuntimeError):
    """The server refused a request or could not be reached; the message names the call and the reason."""


class FleetApi:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        self.base = base_url.rstrip("/") + "/api/v1"
        self.http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        try:
            r = await self.http.request(method, self.base + path, **kw)
        except httpx.HTTPError as e:
            raise ApiError(f"{method} {path}: cannot reach the server at {self.base} ({e.__class__.__name__})") from e
        if r.status_code not in ok:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ApiError(f"{method} {path}: HTTP {r.status_code}: {detail}")
        return r.json() if r.content else None

    async def provision(self, device_id: str, hw: str, tags: dict[str, str]) -> dict[str, Any]:
        return await self._call("POST", "/devices", json={"id": device_id, "hardware_class": hw, "tags": tags})

    async def provision_batch(self, devices: list[tuple[str, str, dict[str, str]]]) -> list[dict[str, Any]]:
        """(id, hardware class, tags) of up to 500 devices, registered all or none; their credentials in order."""
        body = {"devices": [{"id": i, "hardware_class": hw, "tags": tags} for i, hw, tags in devices]}
        return (await self._call("POST", "/devices/batch", json=body))["devices"]

    async def delete_device(self, device_id: str) -> None:
        await self._call("DELETE", f"/devices/{device_id}", ok=(204,))

    async def devices(self, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = await self._call("GET", "/devices", params={**params, "limit": 10000, "offset": len(out)})
            out += page
            if len(page) < 10000:
                return out

    async def device(self, device_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/devices/{device_id}")

    async def device_reports(self, device_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = await self._call("GET", f"/devices/{device_id}/reports", params={"limit": 10000, "offset": len(out)})
            out += page
            if len(page) < 10000:
                return out

    async def upload_bundle(self, data: bytes, grants_keys: tuple[str, ...] = ()) -> dict[str, Any]:
        """`grants_keys`: key ids the bundle's firmware adds to a device's trusted keys (docs/operations.md)."""
        return await self._call("POST", "/bundles", content=data, params={"grants_key": list(grants_keys)},
                                headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    async def bundle(self, bundle_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/bundles/{bundle_id}")

    async def bundles(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/bundles")

    async def publish_bundle(self, bundle_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/bundles/{bundle_id}/publish")

    async def create_rollout(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/rollouts", json=body)

    async def rollout(self, rollout_id: int) -> dict[str, Any]:
        return await self._call("GET", f"/rollouts/{rollout_id}")

    async def rollout_devices(self, rollout_id: int) -> list[dict[str, Any]]:
        return await self._call("GET", f"/rollouts/{rollout_id}/devices")

    async def drift(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/drift")

    async def calibration_proposal(self, device_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/drift/{device_id}/calibration-proposal")

    async def health(self) -> dict[str, Any]:
        r = await self.http.get(self.base.removesuffix("/api/v1") + "/healthz")
        return r.json()
