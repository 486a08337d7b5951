"""Generate src/tinyfleet/protocol/codes.py from the device agent's C++ headers, the wire codes' one source.

    python scripts/gen_protocol_codes.py          # rewrite the module
    python scripts/gen_protocol_codes.py --check  # exit 1 if the committed module differs (tests do this)

Reads `enum class Reason` (protocol.h), the bundle verdicts of `enum class Status` (status.h: BadMagic..
HashMismatch are reason codes 1..18, as `reason_from_status` maps them), `enum class AgentState` and
`enum class AgentEvent` (transitions.h).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "device" / "include" / "tinyfleet"
OUT = ROOT / "src" / "tinyfleet" / "protocol" / "codes.py"


def enum_body(header: Path, name: str) -> str:
    text = header.read_text()
    m = re.search(r"enum class " + name + r"\b[^{]*\{(.*?)\};", text, re.S)
    if m is None:
        raise SystemExit(f"{header}: no enum class {name}")
    return re.sub(r"//[^\n]*", "", m.group(1))


def numbered(header: Path, name: str) -> list[tuple[str, int]]:
    """`Name = N,` entries; an entry without a value continues from the previous one, as C++ does."""
    out: list[tuple[str, int]] = []
    nxt = 0
    for item in enum_body(header, name).split(","):
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"(\w+)\s*(?:=\s*(\d+))?", item)
        if m is None:
            raise SystemExit(f"{header}: cannot read {name} entry {item!r}")
        nxt = int(m.group(2)) if m.group(2) is not None else nxt
        out.append((m.group(1), nxt))
        nxt += 1
    return out


def reasons() -> list[tuple[str, int]]:
    status = [n for n, _ in numbered(INCLUDE / "status.h", "Status")]
    verdicts = status[status.index("BadMagic") : status.index("HashMismatch") + 1]
    listed = numbered(INCLUDE / "protocol.h", "Reason")
    merged = dict(listed)
    for i, n in enumerate(verdicts, start=1):
        if merged.get(n, i) != i:
            raise SystemExit(f"Reason {n} = {merged[n]} in protocol.h, but the verdict order says {i}")
        merged[n] = i
    return sorted(merged.items(), key=lambda kv: kv[1])


def render() -> str:
    states = numbered(INCLUDE / "transitions.h", "AgentState")
    events = numbered(INCLUDE / "transitions.h", "AgentEvent")

    def members(items: list[tuple[str, int]], upper: bool = False) -> str:
        # `None` is a Python keyword: that member is NONE; NAMES keeps every wire name as the agent spells it.
        return "\n".join(f"    {n.upper() if upper or n == 'None' else n} = {v}" for n, v in items)

    def names(table: str, items: list[tuple[str, int]], upper: bool = False) -> str:
        body = "".join(f'\n    {v}: "{n.upper() if upper else n}",' for n, v in items)
        return f"{table}: dict[int, str] = {{{body}\n}}"

    rs = reasons()

    return f'''"""Wire codes of docs/device-protocol.md, generated from the device agent's C++ headers: do not edit.

Regenerate with `python scripts/gen_protocol_codes.py` after changing device/include/tinyfleet/protocol.h,
status.h or transitions.h; tests/protocol/test_codes.py fails while this file and the headers disagree.
"""

from __future__ import annotations

from enum import IntEnum


class Reason(IntEnum):
    """TFSR `reason` (u16): never renumbered."""

{members(rs)}


class AgentState(IntEnum):
    """TFSR `from_state` / `to_state` (u8). Names are the agent's, upper-cased (as stored and shown)."""

{members(states, upper=True)}


class AgentEvent(IntEnum):
    """TFSR `event` (u8)."""

{members(events)}


{names("REASON_NAMES", rs)}
{names("STATE_NAMES", states, upper=True)}
{names("EVENT_NAMES", events)}
'''


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/gen_protocol_codes.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
