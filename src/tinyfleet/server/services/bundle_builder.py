"""Build and sign a bundle on the server from its parts (API JSON), through the same release path as
`fleetctl bundle build` (tinyfleet.bundles.release), signed with the server's key. The result then goes
through the same upload path as any bundle."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles import BundleError, Calibration
from tinyfleet.bundles.errors import ComponentFormatError
from tinyfleet.bundles.release import GateRefused, ReleaseError, ReleaseParts, build_release, recalibrate
from tinyfleet.server.services.errors import Conflict, Unprocessable


def build(
    release: Mapping[str, Any], hardware_class: str, validation_set: bytes, key: ec.EllipticCurvePrivateKey | None
) -> tuple[bytes, dict[str, Any]]:
    """Signed bundle bytes and the gate's report, or Unprocessable naming the problem. `release`: the release
    fields as ReleaseParts.from_values takes them (thresholds and calibration as JSON); `validation_set`: the
    .npz with `inputs` and `labels`."""
    from tinyfleet.bundles.gate import GateInputError, load_validation_set
    from tinyfleet.bundles.profiles import load_profile

    if key is None:
        raise Conflict("this server holds no signing key (set TINYFLEET_SIGNING_KEY_FILE); build with fleetctl")
    try:
        parts = ReleaseParts.from_values(release)
        profile = load_profile(hardware_class)
        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "val.npz"
            npz.write_bytes(validation_set)
            val = load_validation_set(npz)
        data, report = build_release(parts, key, profile, val=val)
    except GateRefused as exc:
        raise Unprocessable(f"model gate failed: {', '.join(c.name for c in exc.report.failures())}") from exc
    except (ComponentFormatError, GateInputError) as exc:
        raise Unprocessable(str(exc)) from exc
    except (BundleError, ReleaseError) as exc:
        raise Unprocessable(f"cannot build the bundle: {exc}") from exc
    return data, {"passed": True, "checks": {c.name: c.status for c in report.checks},
                  "arena_bytes": report.arena_bytes, "report": report.to_dict()}  # fmt: skip


def calibration_only(
    base_data: bytes,
    calibration: Any,
    *,
    bundle_id: str,
    device_scope: str | None,
    key: ec.EllipticCurvePrivateKey | None,
) -> bytes:
    """The base bundle with a new calibration: same firmware, model, thresholds and health vectors (so devices
    copy them from their active bank instead of downloading), security counter + 1, signed by the server."""
    from tinyfleet.bundles import parse_bundle
    from tinyfleet.bundles.gate import GateInputError
    from tinyfleet.bundles.profiles import load_profile

    if key is None:
        raise Conflict("this server holds no signing key (set TINYFLEET_SIGNING_KEY_FILE); build with fleetctl")
    base = parse_bundle(base_data)
    try:
        cal = Calibration.from_json(calibration)
        profile = load_profile(base.manifest.hardware_class)
        return recalibrate(base, cal, key, profile, bundle_id=bundle_id, device_scope=device_scope)
    except (ComponentFormatError, GateInputError) as exc:
        raise Unprocessable(str(exc)) from exc
    except (BundleError, ReleaseError) as exc:
        raise Unprocessable(f"cannot build the bundle: {exc}") from exc
