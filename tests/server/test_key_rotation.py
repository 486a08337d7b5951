"""Key rotation as a procedure: a rollout of a bundle signed by a key the target devices are not known to trust
is refused (they would answer UnknownKeyId and the canary would halt); a bundle signed by the old key whose
firmware adds the new key (uploaded with grants_key) makes them trust it; then the new key's bundles roll out.
GET /api/v1/keys shows which keys devices trust at every step (docs/operations.md, "Rotating a signing key")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyfleet.bundles import TrustedKeys, generate_private_key
from tinyfleet.bundles.signing import key_id

from .srv_bundles import make_bundle, write_public_key
from .srv_fleet import Fleet, wait_until


@pytest.fixture
def fleet(tmp_path: Path, db_url: str):
    f = Fleet(tmp_path, db_url)
    yield f
    f.close()


def _rollout(http, bundle_id: str, **kw):
    return http.post("/api/v1/rollouts", json={"bundle_id": bundle_id, "stages": [{"percent": 100}], **kw})


def _completed(http, rid: int) -> bool:
    return http.get(f"/api/v1/rollouts/{rid}").json()["rollout"]["state"] == "completed"


def test_rotation_is_refused_until_devices_trust_the_new_key(fleet: Fleet) -> None:
    new = generate_private_key()
    new_pub = write_public_key(new, fleet.tmp / "new.pub.pem")
    old_id, new_id = key_id(fleet.key.public_key()).hex(), key_id(new.public_key()).hex()
    fleet.overrides = {"trusted_key_files": [fleet.pub, new_pub]}  # the server accepts both
    # the scripted devices verify with both keys: what the firmware of app-1.5 would give them
    fleet.keys = TrustedKeys.of([fleet.key.public_key(), new.public_key()])
    with fleet.server() as (http, rt):
        v1 = make_bundle(fleet.key, "app-1.0", firmware=b"A" * 9000)
        fleet.upload(http, v1)
        assert http.post("/api/v1/bundles/app-1.0/publish").status_code == 200
        for d in ("d1", "d2"):
            fleet.provision(http, d, "stm32l4", {})
            fleet.start_device(rt.broker_port, d, "stm32l4", v1)
        assert wait_until(lambda: all(http.get(f"/api/v1/devices/{d}").json()["running_bundle"] == "app-1.0"
                                      for d in ("d1", "d2")))  # fmt: skip

        fleet.upload(http, make_bundle(new, "app-2.0", firmware=b"B" * 9000))
        r = _rollout(http, "app-2.0")
        assert r.status_code == 422
        assert r.json()["detail"].startswith(
            f"2 of 2 target devices are not known to trust key {new_id} that signed 'app-2.0' (they run: app-1.0: 2)"
        )
        keys = {k["key_id"]: k for k in http.get("/api/v1/keys").json()}
        assert (keys[old_id]["devices_trusting"], keys[new_id]["devices_trusting"]) == (2, 0)
        assert keys[new_id]["server_trusts"] and keys[new_id]["bundles_signed"] == ["app-2.0"]

        # step 1: a bundle signed by the old key whose firmware adds the new key to the trusted set
        r = http.post("/api/v1/bundles", params={"grants_key": new_id},
                      content=make_bundle(fleet.key, "app-1.5", firmware=b"C" * 9000),
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code == 201 and r.json()["grants_keys"] == [new_id], r.text
        rid = _rollout(http, "app-1.5").json()["rollout"]["id"]
        assert wait_until(lambda: _completed(http, rid), 30)
        keys = {k["key_id"]: k for k in http.get("/api/v1/keys").json()}
        assert keys[new_id]["devices_trusting"] == 2

        # step 2: the new key's bundle is accepted and installs
        r = _rollout(http, "app-2.0")
        assert r.status_code == 201, r.text
        assert wait_until(lambda: _completed(http, r.json()["rollout"]["id"]), 30)

        r = http.post("/api/v1/bundles", params={"grants_key": "not-a-key-id"}, content=b"x",
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code == 422 and "16 lowercase hex digits" in r.json()["detail"]
