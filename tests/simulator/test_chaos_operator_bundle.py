"""`fleet-sim chaos --bundle`: the operator's own bundle is the release under test (a pre-hardware rehearsal)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tinyfleet.bundles.signing import generate_private_key, public_pem
from tinyfleet.simulator import releases
from tinyfleet.simulator.releases import Release

FLEET_SIM = str(Path(sys.executable).with_name("fleet-sim"))


def _bundle(tmp: Path) -> tuple[Path, Path]:
    key = generate_private_key()
    pub = tmp / "ops.pub.pem"
    pub.write_bytes(public_pem(key.public_key()))
    out = tmp / "ops.tfb"
    out.write_bytes(releases.build(Release("ops-2.0.0", counter=2), "stm32l4", key))
    return out, pub


def test_chaos_runs_the_operators_bundle(tmp_path: Path) -> None:
    bundle, pub = _bundle(tmp_path)
    r = subprocess.run([FLEET_SIM, "chaos", "--devices", "8", "--scenario", "power-cuts", "--seed", "3",
                        "--bundle", str(bundle), "--trust", str(pub), "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["passed"]
    assert [(x["bundle"], x["state"]) for x in rep["outcome"]["rollouts"]] == [("ops-2.0.0-stm32l4", "completed")]
    assert rep["outcome"]["devices_by_bundle"] == {"ops-2.0.0-stm32l4": 8}


def test_chaos_bundle_refusals_are_one_line(tmp_path: Path) -> None:
    bundle, pub = _bundle(tmp_path)
    other = tmp_path / "other.pub.pem"
    other.write_bytes(public_pem(generate_private_key().public_key()))
    cases = [
        (["--scenario", "bad-firmware", "--trust", str(pub)], "scenario 'bad-firmware' rolls out its own release"),
        (["--scenario", "power-cuts"], "--bundle needs --trust"),
        (["--scenario", "power-cuts", "--trust", str(other)], "cannot be used: UnknownKeyId"),
    ]
    for extra, message in cases:
        r = subprocess.run([FLEET_SIM, "chaos", "--devices", "2", "--bundle", str(bundle), *extra],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
