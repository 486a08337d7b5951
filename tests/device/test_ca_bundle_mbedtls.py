"""A device's side of a broker CA rotation, with Debian's mbedTLS 2.28 (the library the STM32 and ESP32-S3 ports
use): the `ca_pem` a device is handed during a rotation (two CA certificates, one after the other) parses with
one mbedtls_x509_crt_parse into two trust anchors, and a broker certificate from either CA verifies against
them; with only the old CA, the new broker certificate does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ..server.srv_pki import make_ca, make_server

SOURCE = Path(__file__).parent / "c" / "ca_bundle_check.c"


@pytest.fixture(scope="module")
def checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc")
    if cc is None or not Path("/usr/include/mbedtls/x509_crt.h").exists():
        pytest.skip("needs a C compiler and libmbedtls-dev (make deps installs them)")
    exe = tmp_path_factory.mktemp("mbedtls") / "ca_bundle_check"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-o", str(exe), str(SOURCE), "-lmbedx509", "-lmbedcrypto"],
                   check=True, capture_output=True)  # fmt: skip
    return exe


def _check(checker: Path, tmp: Path, ca_pem: bytes, broker_pem: bytes) -> tuple[str, str]:
    (tmp / "ca.pem").write_bytes(ca_pem)
    (tmp / "broker.pem").write_bytes(broker_pem)
    out = subprocess.run([str(checker), str(tmp / "ca.pem"), str(tmp / "broker.pem")], capture_output=True,
                         text=True, check=True).stdout.splitlines()  # fmt: skip
    return out[0], out[1]


def test_a_two_ca_bundle_parses_into_two_anchors_and_trusts_either_ca(checker: Path, tmp_path: Path) -> None:
    old, new = make_ca("fleet CA 2026"), make_ca("fleet CA 2027")
    old_broker, new_broker = make_server(old).pem, make_server(new).pem
    bundle = old.pem + new.pem  # what provisioning hands out between `fleetctl ca add` and `ca retire`
    assert _check(checker, tmp_path, bundle, old_broker) == ("parsed 2 ret 0", "verify 0")
    assert _check(checker, tmp_path, bundle, new_broker) == ("parsed 2 ret 0", "verify 0")
    parsed, verify = _check(checker, tmp_path, old.pem, new_broker)
    assert parsed == "parsed 1 ret 0" and verify != "verify 0"  # the old CA alone: the new broker is refused
    # one certificate of the two damaged: mbedTLS keeps the other and says how many it could not parse
    broken = old.pem.replace(b"MI", b"M!", 1) + new.pem
    assert _check(checker, tmp_path, broken, new_broker)[0] == "parsed 1 ret 1"
