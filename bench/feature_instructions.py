"""The feature extractor's instructions per window on Cortex-M4, counted by QEMU, and the cycles they take.

Runs `feature_instructions.elf` (device/targets/cortex-m/footprint/feature_instructions.cpp: validation and
edge windows extracted from a SampleRing, contiguous and wrapped) under `qemu-system-arm -M mps2-an386` with
one guest instruction per translation block (`-singlestep`) and a log line for every block executed
(`-d exec,nochain`): one line per executed instruction, with its address and symbol. The instructions of a
window are the lines inside `tinyfleet::features` between two calls of `tinyfleet_window_done`.

That is an exact instruction count of the code as compiled for the Cortex-M4, not a cycle count: QEMU does
not model the pipeline. The cycles are estimated from the executed instructions with the Cortex-M4 Technical
Reference Manual's timings (section 3.3), zero-wait-state memory, as a range: low = single loads and stores
pipelined with a neighbouring load or store (1 cycle) and a branch refill P = 1; high = every load and store
2 cycles and P = 3. Other instructions 1 cycle; LDM/STM/PUSH/POP 1 + N registers (+ P if they load the PC).

Usage: feature_instructions.py <cortex-m build dir>   (footprint.py calls measure())
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ELF = "feature_instructions.elf"
MARKER = "tinyfleet_window_done"
EXTRACTOR = "_ZN9tinyfleet8features"  # every function of the extractor library (mangled namespace prefix)
TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/[0-9a-f]+/[0-9a-f]+\] (\S*)")
INSN = re.compile(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$")
SINGLE_MEMORY = re.compile(r"^(ldr|str)(s?[bh]|ex[bh]?|)(\.w|\.n)?$")  # single load/store (not ldrd/ldm)
MULTI = re.compile(r"^(ldm|stm|push|pop|ldrd|strd)")
BRANCH = re.compile(r"^(b|bl|blx|bx|cbz|cbnz|tbb|tbh)(eq|ne|cs|cc|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|hs|lo)?(\.w|\.n)?$")


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError:
        sys.exit(f"feature_instructions: {cmd[0]} not found (make deps installs it)")
    except subprocess.CalledProcessError as e:
        sys.exit(f"feature_instructions: {' '.join(cmd)} failed ({e.returncode}): {e.stderr.strip()}")


def disassembly(elf: Path) -> dict[int, tuple[str, str, int]]:
    """Address -> (mnemonic, operands, size in bytes) of every instruction in .text."""
    rows: list[tuple[int, str, str]] = []
    for line in run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)]).stdout.splitlines():
        if m := INSN.match(line):
            rows.append((int(m.group(1), 16), m.group(2), m.group(3)))
    insns = {}
    for (addr, mnem, ops), nxt in zip(rows, rows[1:] + [(rows[-1][0] + 2, "", "")], strict=True):
        insns[addr] = (mnem, ops, max(2, min(4, nxt[0] - addr)))
    return insns


def registers(ops: str) -> int:
    regs = re.search(r"\{([^}]*)\}", ops)
    if not regs:
        return 2  # ldrd/strd
    n = 0
    for part in regs.group(1).split(","):
        lo, _, hi = part.strip().partition("-")
        n += int(hi.strip()[1:]) - int(lo[1:]) + 1 if hi else 1
    return n


def cycles(trace: list[int], insns: dict[int, tuple[str, str, int]]) -> tuple[int, int]:
    """(low, high) Cortex-M4 cycle estimate of an executed instruction sequence (addresses in order)."""
    low = high = 0
    prev_memory = False
    for i, pc in enumerate(trace):
        mnem, ops, size = insns.get(pc, ("?", "", 2))
        taken = i + 1 < len(trace) and trace[i + 1] != pc + size
        base = mnem.split(".")[0]
        if SINGLE_MEMORY.match(mnem):
            low += 1 if prev_memory else 2
            high += 2
            loads_pc = base.startswith("ldr") and ops.startswith("pc")
            low, high = low + (1 if loads_pc else 0), high + (3 if loads_pc else 0)
            prev_memory = True
            continue
        prev_memory = False
        if MULTI.match(base):
            n = registers(ops)
            refill = "pc" in ops and base in ("pop", "ldm", "ldmia")
            low += 1 + n + (1 if refill else 0)
            high += 1 + n + (3 if refill else 0)
        elif BRANCH.match(mnem) and taken:
            low, high = low + 2, high + 4
        else:
            low, high = low + 1, high + 1
    return low, high


def measure(build: Path) -> dict:
    elf = build / ELF
    if not elf.exists():
        sys.exit(f"feature_instructions: {elf} missing: build the target feature_instructions first")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "exec.log"
        r = run(["timeout", "300", "qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4", "-nographic",
                   "-monitor", "none", "-serial", "none", "-semihosting-config", "enable=on,target=native",
                   "-singlestep", "-d", "exec,nochain", "-D", str(log), "-kernel", str(elf)])
        out = r.stdout + r.stderr  # semihosting console output
        lines = log.read_text().splitlines()
    layouts = out.split()
    insns = disassembly(elf)
    windows: list[list[int]] = []
    current: list[int] | None = None
    prev_sym = ""
    for line in lines:
        m = TRACE.match(line)
        if not m:
            continue
        pc, sym = int(m.group(1), 16), m.group(2)
        if sym == MARKER and prev_sym != MARKER:  # entering the marker: a window starts or ends
            if current is None:
                current = []
            else:
                windows.append(current)
                current = None
        elif current is not None and sym.startswith(EXTRACTOR):
            current.append(pc)
        prev_sym = sym
    if not windows or len(windows) != len(layouts):
        sys.exit(f"feature_instructions: {len(windows)} windows in the trace, the image reported {len(layouts)}")
    per_window = []
    for layout, trace in zip(layouts, windows, strict=True):
        low, high = cycles(trace, insns)
        per_window.append({"layout": layout, "instructions": len(trace), "cycles_low": low, "cycles_high": high})
    counts = [w["instructions"] for w in per_window]
    return {
        "method": "qemu-system-arm -M mps2-an386 -singlestep -d exec,nochain: one log line per executed "
        "instruction; instructions inside tinyfleet::features counted per window. Cycles: estimated from them "
        "with Cortex-M4 TRM timings (low: loads/stores pipelined, branch refill 1; high: loads/stores 2, refill "
        "3), zero-wait-state memory; QEMU is not cycle-accurate",
        "qemu": run(["qemu-system-arm", "--version"]).stdout.splitlines()[0],
        "windows": per_window,
        "instructions_per_window": {"min": min(counts), "max": max(counts)},
        "cycles_per_window_estimate": {"low": min(w["cycles_low"] for w in per_window),
                                       "high": max(w["cycles_high"] for w in per_window)},
    }


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps(measure(Path(sys.argv[1])), indent=2))
