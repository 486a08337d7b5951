"""The wire codes have one source, the agent's C++ headers: the generated Python tables and the protocol doc
must say exactly what the headers say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tinyfleet.bundles.errors import ALL_ERRORS
from tinyfleet.protocol.codes import REASON_NAMES, STATE_NAMES, AgentState, Reason

ROOT = Path(__file__).resolve().parents[2]


def test_generated_codes_match_the_cpp_headers() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protocol_codes.py"), "--check"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_generator_follows_an_added_reason(tmp_path: Path) -> None:
    """A code added to protocol.h appears in the generated module without another edit."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_protocol_codes as gen
    finally:
        sys.path.pop(0)
    inc = tmp_path / "tinyfleet"
    inc.mkdir()
    for h in ("status.h", "transitions.h", "protocol.h"):
        (inc / h).write_text((gen.INCLUDE / h).read_text())
    header = inc / "protocol.h"
    header.write_text(header.read_text().replace("  Confirmed = 99,", "  Confirmed = 99,\n  Brandnew = 100,  // test"))
    old, gen.INCLUDE = gen.INCLUDE, inc
    try:
        text = gen.render()
    finally:
        gen.INCLUDE = old
    assert "    Brandnew = 100\n" in text and '    100: "Brandnew",\n' in text


def test_bundle_verdicts_are_reasons_one_to_eighteen() -> None:
    assert Reason.BadMagic == 1 and Reason.HashMismatch == 18 and Reason.NONE == 0
    assert [e.code for e in ALL_ERRORS] == [REASON_NAMES[i] for i in range(1, 19)]


def test_protocol_doc_tables_match() -> None:
    doc = (ROOT / "docs" / "device-protocol.md").read_text()
    section = doc.split("## Reason codes")[1].split("\n## ")[0]
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (\w+) \|", section, re.M)}
    assert rows == REASON_NAMES
    assert {s.value: s.name for s in AgentState} == STATE_NAMES
