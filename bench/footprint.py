"""Footprint of the device agent on Cortex-M4, from the cross-build's own outputs (device/targets/cortex-m).

Flash and static RAM: arm-none-eabi-size on the linked images, split by part (core, feature extractor, crypto
port, mbedTLS, flash port, application, runtime) from the linker map, i.e. after --gc-sections dropped what is unused.
Stack: worst case over the call graph GCC writes with -fcallgraph-info=su (per-function frames from
-fstack-usage); functions without that information (newlib, libgcc) get their frame and callees from the
disassembly; an indirect call (a port's virtual method, an mbedTLS function pointer) is charged the deepest
function whose address the image takes. Heap: the image's symbol table has no allocator symbol.

Usage: footprint.py <cortex-m build dir> [--json bench/results/footprint.json] [--doc docs/footprint.md]
(--doc rewrites the figures between the markers of docs/footprint.md from this run.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import feature_instructions  # bench/, next to this script

CORE_FLASH_GOAL = 16 * 1024
CORE_RAM_GOAL = 4 * 1024
STACK_GOAL = 1536
HEAP_SYMBOLS = {
    "malloc", "calloc", "realloc", "free", "_malloc_r", "_calloc_r", "_realloc_r", "_free_r", "_sbrk", "_sbrk_r",
    "_Znwj", "_Znaj", "_ZdlPv", "_ZdaPv", "_ZdlPvj", "_ZdaPvj", "_ZnwjRKSt9nothrow_t", "_ZnajRKSt9nothrow_t",
}
APP_INPUT_BYTES = 768  # agent_main.cpp's g_input: vib-window-v1's 256 x 3 int8 model input
PARTS = ("core", "feature extractor", "crypto port", "mbedTLS", "flash port", "application", "runtime")


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit(f"footprint: {cmd[0]} not found (install gcc-arm-none-eabi)")
    except subprocess.CalledProcessError as e:
        sys.exit(f"footprint: {' '.join(cmd)} failed: {e.stderr.strip()}")


# --- sizes ------------------------------------------------------------------------------------------------


def berkeley_size(path: Path) -> dict[str, int]:
    """arm-none-eabi-size totals (text, data, bss) of an image or archive."""
    lines = run(["arm-none-eabi-size", "-t", str(path)]).strip().splitlines()
    text, data, bss = (int(x) for x in lines[-1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


PORT_NAMESPACES = ("_ZN9tinyfleet4host", "_ZN9tinyfleet7stm32l4", "_ZN9tinyfleet3ram", "_ZN9tinyfleet7cortexm",
                   "_ZN9tinyfleet8semihost")


def part_of(origin: str, section: str) -> str:
    # The feature extractors (device/src/features, namespace tinyfleet::features) are a library apart.
    if "libtinyfleet_features.a" in origin or "_ZN9tinyfleet8features" in section:
        return "feature extractor"
    # Inline core functions (constructors of core types, header-defined methods) are emitted into the object
    # that uses them: they count as core wherever they land.
    if "_ZN9tinyfleet" in section and not any(ns in section for ns in PORT_NAMESPACES):
        return "core"
    if "libtinyfleet_core.a" in origin:
        return "core"
    if "libtinyfleet_crypto.a" in origin:
        return "crypto port"
    if "libmbedcrypto_cm.a" in origin:
        return "mbedTLS"
    if "libtinyfleet_stm32.a" in origin or "libtinyfleet_ram_flash.a" in origin:
        return "flash port"
    if "cortexm_runtime" in origin or origin.startswith("/usr/") or "linker stubs" in origin or origin == "*fill*":
        return "runtime"
    return "application"


# As arm-none-eabi-size (Berkeley) counts them: writable loaded sections are data, NOBITS is bss.
KIND_OF_OUTPUT = {".data": "data", ".init_array": "data", ".preinit_array": "data", ".bss": "bss"}
LOADED_OUTPUTS = {".isr_vector", ".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array", ".data", ".bss"}
OUTPUT_SECTION = re.compile(r"^(\.[\w.]+)(?:\s|$)")
INPUT_NAME = re.compile(r"^ (\S+)$")
INPUT_ENTRY = re.compile(r"^ (\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(?:\s+(.*))?$")


def map_parts(map_path: Path, core_objects: dict[str, int] | None = None,
              core_sections: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
    """text/data/bss per part from the input sections the linker placed (GNU ld map file). `core_objects`
    receives the core's flash bytes (text + data) per source file, `core_sections` per input section."""
    parts = {p: {"text": 0, "data": 0, "bss": 0} for p in PARTS}
    lines = map_path.read_text().splitlines()
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        sys.exit(f"footprint: {map_path} is not a GNU ld map file")
    output, section = None, ""
    for line in lines[start + 1 :]:
        if m := OUTPUT_SECTION.match(line):
            output = m.group(1)
            continue
        if output not in LOADED_OUTPUTS:
            continue
        if m := INPUT_NAME.match(line):  # a long input section name: its address and size follow on the next line
            section = m.group(1)
            continue
        m = INPUT_ENTRY.match(line)
        if not m:
            continue
        if m.group(1):
            section = m.group(1)
        size, origin = int(m.group(3), 16), (m.group(4) or "").strip()
        if section == "*fill*":
            origin = "*fill*"
        if size:
            part, kind = part_of(origin, section), KIND_OF_OUTPUT.get(output, "text")
            parts[part][kind] += size
            if part == "core" and kind != "bss" and core_sections is not None:
                core_sections[section] = core_sections.get(section, 0) + size
            if part == "core" and kind != "bss" and core_objects is not None:
                src = m2.group(1) if (m2 := re.search(r"\(([^)]+)\.obj\)$", origin)) else "(inline, in its user)"
                core_objects[src] = core_objects.get(src, 0) + size
        section = ""
    return parts


def symbol_sizes(elf: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for line in run(["arm-none-eabi-nm", "-S", "-C", str(elf)]).splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) == 4:
            sizes[fields[3]] = int(fields[1], 16)
    return sizes


def heap_symbols(elf: Path) -> list[str]:
    found = []
    for line in run(["arm-none-eabi-nm", str(elf)]).splitlines():
        name = line.split()[-1]
        if name in HEAP_SYMBOLS:
            found.append(name)
    return sorted(set(found))


# --- stack --------------------------------------------------------------------------------------------


@dataclass
class Function:
    name: str
    label: str = ""
    frame: int | None = None
    calls: set[str] = field(default_factory=set)
    indirect: bool = False
    indirect_sites: list[str] = field(default_factory=list)  # "file:line:col" of each indirect call
    source: str = "callgraph"


NODE = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"(?: label: "([^"]+)")?')
# The virtual methods of device/include/tinyfleet/ports.h (a core indirect call goes to one of them) and of
# the STM32 driver's Bus (device/ports/stm32/stm32l4_bus.h).
PORT_METHODS = {"geometry", "read", "write", "erase", "sha256_start", "sha256_update", "sha256_finish",
                "ecdsa_p256_verify", "battery_pct", "request_reboot", "unix_seconds", "monotonic_ms", "run",
                "read32", "write32", "perform"}
FRAME = re.compile(r"\\n(\d+) bytes \((static|dynamic|dynamic,bounded)\)")


def local_name(title: str) -> str:
    """Callgraph title of a static function is 'file:name'; the image's symbol is 'name'."""
    return title.rsplit(":", 1)[-1] if title.startswith("/") else title


def read_callgraph(ci_files: Iterable[Path]) -> dict[str, Function]:
    funcs: dict[str, Function] = {}
    for ci in ci_files:
        for line in ci.read_text().splitlines():
            if m := NODE.match(line):
                title, label = m.groups()
                f = funcs.setdefault(title, Function(title))
                if fm := FRAME.search(label):
                    f.frame = int(fm.group(1))
                    f.label = label.split("\\n", 1)[0]
                    if fm.group(2) != "static":
                        f.source = f"callgraph ({fm.group(2)})"
            elif m := EDGE.match(line):
                src, dst, site = m.groups()
                f = funcs.setdefault(src, Function(src))
                if dst == "__indirect_call":
                    f.indirect = True
                    if site:
                        f.indirect_sites.append(site)
                else:
                    f.calls.add(dst)
    return funcs


PUSH = re.compile(r"\b(?:push|stmdb\s+sp!,)\s*\{([^}]*)\}")
VPUSH = re.compile(r"\bvpush\s*\{([^}]*)\}")
SUBSP = re.compile(r"\bsub(?:w|\.w)?\s+sp,\s*(?:sp,\s*)?#(\d+)")
CALL = re.compile(r"\b(?:bl|blx|b\.w|b)\s+[0-9a-f]+ <([^>+]+)>")
FUNC_START = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")


def reg_count(regs: str) -> int:
    n = 0
    for part in regs.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(re.sub(r"\D", "", x)) for x in part.split("-"))
            n += hi - lo + 1
        elif part:
            n += 1
    return n


def disassembly_frames(elf: Path) -> dict[str, Function]:
    """Frame (prologue pushes and sp decrements) and direct callees of every function in the image."""
    funcs: dict[str, Function] = {}
    current: Function | None = None
    for line in run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)]).splitlines():
        if m := FUNC_START.match(line):
            current = funcs.setdefault(m.group(2), Function(m.group(2), frame=0, source="disassembly"))
            continue
        if current is None or not line.strip():
            continue
        if m := PUSH.search(line):
            current.frame = (current.frame or 0) + 4 * reg_count(m.group(1))
        elif m := VPUSH.search(line):
            width = 8 if "d" in m.group(1) else 4
            current.frame = (current.frame or 0) + width * reg_count(m.group(1))
        elif m := SUBSP.search(line):
            current.frame = (current.frame or 0) + int(m.group(1))
        if (m := CALL.search(line)) and m.group(1) != current.name:
            current.calls.add(m.group(1))
        if re.search(r"\bblx\s+r\d+|\bbx\s+r(?:[0-9]|1[0-2])\b", line):
            current.indirect = True
    return funcs


def address_taken(elf: Path, symbols: dict[str, int]) -> set[str]:
    """Functions whose Thumb address (addr | 1) is stored as a word in the image outside the vector table and
    the constructor list: vtables, function-pointer tables and literal pools, i.e. the indirect call targets."""
    by_addr = {addr | 1: name for name, addr in symbols.items()}
    taken: set[str] = set()
    dump = run(["arm-none-eabi-objdump", "-s", "-j", ".text", "-j", ".data", str(elf)])
    for line in dump.splitlines():
        m = re.match(r"^ ([0-9a-f]+) ([0-9a-f ]{1,35})", line)
        if not m:
            continue
        base = int(m.group(1), 16)
        hex_area = m.group(2).rstrip()
        raw = bytes.fromhex(hex_area.replace(" ", ""))
        for off in range(0, len(raw) - 3):
            if (base + off) % 4:
                continue
            word = int.from_bytes(raw[off : off + 4], "little")
            if word in by_addr:
                taken.add(by_addr[word])
    return taken


def function_symbols(elf: Path) -> dict[str, int]:
    syms: dict[str, int] = {}
    for line in run(["arm-none-eabi-nm", str(elf)]).splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "Tt":
            syms[fields[2]] = int(fields[0], 16) & ~1
    return syms


class StackModel:
    def __init__(self, elf: Path, ci_files: list[Path]) -> None:
        self.symbols = function_symbols(elf)
        graph = read_callgraph(ci_files)
        disasm = disassembly_frames(elf)
        self.funcs: dict[str, Function] = {}
        for title, f in graph.items():
            name = local_name(title)
            if f.frame is not None and name in self.symbols:
                f.calls = {local_name(c) for c in f.calls}
                self.funcs[name] = f
        for name, f in disasm.items():
            if name not in self.funcs and name in self.symbols:
                self.funcs[name] = f
        self.indirect_targets = sorted(address_taken(elf, self.symbols) & set(self.funcs))
        self.cycles: set[tuple[str, str]] = set()
        self._memo: dict[tuple[str, bool], tuple[int, list[str]]] = {}
        self._indirect_memo: dict[tuple[str, ...], tuple[int, list[str]]] = {}
        self._indirect_busy: set[tuple[str, ...]] = set()
        self._on_stack = []

    def worst(self, name: str, ports: bool) -> tuple[int, list[str]]:
        """Deepest stack from `name` down: (bytes, path). Without `ports`, indirect calls cost nothing.
        A call that closes a cycle (recursion) is counted once and listed in `cycles`."""
        self._on_stack: list[str] = []
        return self._worst(name, ports)

    def _worst(self, name: str, ports: bool) -> tuple[int, list[str]]:
        key = (name, ports)
        if key in self._memo:
            return self._memo[key]
        f = self.funcs.get(name)
        if f is None:
            return 0, [f"{name} (not in image)"]
        self._on_stack.append(name)
        best, best_path = 0, []
        for callee in sorted(f.calls):
            if callee in self._on_stack:
                self.cycles.add((name, callee))
                continue
            depth, path = self._worst(callee, ports)
            if depth > best:
                best, best_path = depth, path
        if f.indirect and ports:
            for targets in self._site_targets(f):
                depth, path = self._indirect(name, targets)
                if depth > best:
                    best, best_path = depth, path
        self._on_stack.pop()
        result = ((f.frame or 0) + best, [self.pretty(name), *best_path])
        self._memo[key] = result
        return result

    def worst_via_port(self, name: str) -> tuple[int, list[str]]:
        """Deepest path from `name` that makes at least one indirect (port) call."""
        self._on_stack = []
        return self._via(name)

    def _via(self, name: str) -> tuple[int, list[str]]:
        f = self.funcs.get(name)
        if f is None or name in self._on_stack:
            return 0, []
        self._on_stack.append(name)
        best, best_path = 0, []
        if f.indirect:
            for targets in self._site_targets(f):
                depth, path = self._indirect(name, targets)
                if depth > best:
                    best, best_path = depth, path
        for callee in sorted(f.calls):
            depth, path = self._via(callee)
            if path and depth > best:
                best, best_path = depth, path
        self._on_stack.pop()
        if not best_path:
            return 0, []
        return (f.frame or 0) + best, [self.pretty(name), *best_path]

    def _site_targets(self, f: Function) -> list[tuple[str, ...]]:
        """Candidate callees of each indirect call of f. C++: the port method named at the call's source line
        (`crypto.sha256_update(`). C: the address-taken C functions whose name holds the called pointer's
        name (`verify_func` -> *verify*, `memset_func` -> memset, `grp->modp` -> ecp_mod_p256). Else every
        address-taken function."""
        everything = tuple(self.indirect_targets)
        result = []
        for site in f.indirect_sites or [""]:
            text, col = self._source_line(site)
            methods = set(re.findall(r"(?:\.|->)\s*(\w+)\s*\(", text)) & PORT_METHODS
            if methods:
                mangled = [re.compile(rf"(?<!\d){len(m)}{m}E") for m in methods]
                result.append(tuple(t for t in everything if any(p.search(t) for p in mangled)))
                continue
            paren = text.find("(", max(col - 1, 0))
            called = re.search(r"(\w+)\s*$", text[:paren]) if paren >= 0 else None
            stem = re.sub(r"^mbedtls_|_func$", "", called.group(1)).split("_")[-1] if called else ""
            c_funcs = [t for t in everything if not t.startswith("_Z")]
            matched = tuple(t for t in c_funcs if stem and stem in t.replace("_", ""))
            result.append(matched or everything)
        return result

    def _source_line(self, site: str) -> tuple[str, int]:
        """The source line of a call site "file:line:col", and its column."""
        parts = site.rsplit(":", 2)
        if len(parts) != 3:
            return "", 0
        try:
            return Path(parts[0]).read_text().splitlines()[int(parts[1]) - 1], int(parts[2])
        except (OSError, IndexError, ValueError):
            return "", 0

    def _indirect(self, caller: str, targets: tuple[str, ...]) -> tuple[int, list[str]]:
        if targets in self._indirect_memo:
            return self._indirect_memo[targets]
        if targets in self._indirect_busy:
            self.cycles.add((caller, "(indirect)"))
            return 0, []
        self._indirect_busy.add(targets)
        best, best_path = 0, []
        for target in targets:
            if target in self._on_stack:
                continue
            depth, path = self._worst(target, True)
            if depth > best:
                best, best_path = depth, ["(indirect)", *path]
        self._indirect_busy.discard(targets)
        self._indirect_memo[targets] = (best, best_path)
        return best, best_path

    def pretty(self, name: str) -> str:
        f = self.funcs.get(name)
        label = f.label if f and f.label else name
        label = re.sub(r"^(?:[\w:<>,\s*&]+?\s)?(?=[\w:~]+\()", "", label)  # drop the return type
        return f"{label.split('(')[0]} [{f.frame if f else '?'}]"

    def entries(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [n for n, f in self.funcs.items() if regex.search(f.label or n)]


# --- report -------------------------------------------------------------------------------------------


def add(*sizes: dict[str, int]) -> dict[str, int]:
    return {k: sum(s[k] for s in sizes) for k in ("text", "data", "bss")}


def stack_report(model: StackModel, pattern: str, ports: bool, via_port: bool = False) -> dict[str, object]:
    """Deepest entry point matching `pattern`; with `via_port`, the deepest whose path goes through a port."""
    worst, path, entry = 0, [], ""
    for name in model.entries(pattern):
        depth, p = model.worst(name, ports)
        if via_port:
            depth, p = model.worst_via_port(name)
        if depth > worst:
            worst, path, entry = depth, p, name
    return {"bytes": worst, "entry": model.pretty(entry) if entry else "", "path": path}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--doc", type=Path, help="rewrite the figures section of this markdown file")
    args = ap.parse_args()
    build: Path = args.build
    agent_elf, boot_elf = build / "footprint_agent.elf", build / "stm32l4_bootloader.elf"
    for p in (agent_elf, agent_elf.with_suffix(".map"), boot_elf):
        if not p.exists():
            sys.exit(f"footprint: {p} missing: build the cross-build first (device/targets/footprint.sh)")

    image = berkeley_size(agent_elf)
    core_objects: dict[str, int] = {}
    core_sections: dict[str, int] = {}
    parts = map_parts(agent_elf.with_suffix(".map"), core_objects, core_sections)
    largest = sorted(core_sections.items(), key=lambda kv: -kv[1])[:8]
    demangled = run(["arm-none-eabi-c++filt", *[re.sub(r"^\.(text|rodata)\.", "", k) for k, _ in largest]])
    largest_core = []
    for name, (section, size) in zip(demangled.splitlines(), largest, strict=True):
        if re.match(r"^\.rodata(\.str[\d.]*)?$", section):  # anonymous constants, merged string literals
            name = "(string literals)" if ".str" in section else "(unnamed constants)"
        largest_core.append((name.split("(")[0] or name, size))
    sizes_obj = next(build.rglob("sizes.cpp.obj"), None)
    type_sizes = {}
    if sizes_obj is not None:
        type_sizes = {k.removeprefix("tinyfleet_sizeof_"): v for k, v in symbol_sizes(sizes_obj).items()}
    total = add(*parts.values())
    # The map lists mergeable string sections before duplicates are merged: it may overcount a few bytes.
    overcount = {k: total[k] - image[k] for k in image}
    if any(v < 0 or v > 256 for v in overcount.values()):
        sys.exit(f"footprint: the map's parts {total} do not add up to arm-none-eabi-size {image}")
    core = parts["core"]
    crypto = add(parts["crypto port"], parts["mbedTLS"])
    syms = symbol_sizes(agent_elf)
    agent_obj = next((v for k, v in syms.items() if k.endswith("g_agent")), 0)
    pool = next((v for k, v in syms.items() if k.endswith("g_pool")), 0)
    core_lib = berkeley_size(build / "libtinyfleet_core.a")
    boot = berkeley_size(boot_elf)

    ci_files = sorted(build.rglob("*.ci"))
    agent_events = r"tinyfleet::Agent::(on_\w+|run_health_check)\("
    model = StackModel(agent_elf, ci_files)
    stack_core = stack_report(model, agent_events, ports=False)
    stack_ports = stack_report(model, agent_events, ports=True)
    stack_via = stack_report(model, agent_events, ports=True, via_port=True)
    stack_features = stack_report(model, r"tinyfleet::features::extract\(", ports=False)
    boot_model = StackModel(boot_elf, ci_files)
    stack_boot = stack_report(boot_model, r"^int main\(\)|^main$", ports=True)
    heap = sorted(set(heap_symbols(agent_elf)) | set(heap_symbols(boot_elf)))
    compiler = run(["arm-none-eabi-gcc", "--version"]).splitlines()[0]

    core_flash = core["text"] + core["data"]
    core_ram = core["data"] + core["bss"] + agent_obj
    core_ram_less_download = core_ram - type_sizes.get("PrefixBuffer", 0)  # the prefix buffer: the download buffer
    result = {
        "compiler": compiler,
        "flags": "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -ffunction-sections -fdata-sections "
        "-fno-exceptions -fno-rtti, --gc-sections",
        "image": {"file": agent_elf.name, **image},
        "parts": parts,
        "map_overcount_merged_strings": overcount,
        "core": {**core, "flash": core_flash},
        "core_plus_crypto": {**add(core, crypto), "flash": core_flash + crypto["text"] + crypto["data"]},
        "core_library_before_gc": core_lib,
        "agent_object_bytes": agent_obj,
        "core_flash_by_source": dict(sorted(core_objects.items(), key=lambda kv: -kv[1])),
        "largest_core_sections": largest_core,
        "sizeof": type_sizes,
        "mbedtls_pool_bytes": pool,
        "core_static_ram_bytes": core_ram,
        "download_buffer_bytes": type_sizes.get("PrefixBuffer", 0),
        "core_static_ram_excluding_download_buffer_bytes": core_ram_less_download,
        "stack": {"core": stack_core, "with_ports": stack_ports, "through_a_port": stack_via,
                  "bootloader": stack_boot},
        "feature_extractor": {
            **parts["feature extractor"],
            "flash": parts["feature extractor"]["text"] + parts["feature extractor"]["data"],
            "static_ram": parts["feature extractor"]["data"] + parts["feature extractor"]["bss"],
            "stack": stack_features,
            "per_window": feature_instructions.measure(build),
        },
        "stack_cycles_cut": sorted(f"{a} -> {b}" for a, b in model.cycles | boot_model.cycles),
        "heap_symbols": heap,
        "bootloader": {"file": boot_elf.name, **boot},
        "goals": {
            "core_flash_bytes": [core_flash, CORE_FLASH_GOAL],
            "static_ram_excl_download_buf": [core_ram_less_download, CORE_RAM_GOAL],
            "stack_bytes": [stack_core["bytes"], STACK_GOAL],
        },
    }
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        print_report(result)
    print(report.getvalue(), end="")
    if args.doc:
        write_doc(args.doc, result, report.getvalue())
        print(f"\nrewritten: {args.doc}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwritten: {args.json}")
    if heap:
        sys.exit(1)


DOC_BEGIN, DOC_END = "<!-- footprint:begin -->", "<!-- footprint:end -->"


def source_state() -> str:
    """The commit the figures come from, and whether device/ or bench/ had uncommitted changes."""
    try:
        commit = run(["git", "rev-parse", "--short", "HEAD"]).strip()
        dirty = run(["git", "status", "--porcelain", "--", "device", "bench/footprint.py"]).strip()
    except SystemExit:
        return "an unknown commit"
    return f"commit `{commit}`" + (" with uncommitted changes in device/" if dirty else "")


def write_doc(path: Path, r: dict, report: str) -> None:
    text = path.read_text()
    if DOC_BEGIN not in text or DOC_END not in text:
        sys.exit(f"footprint: {path} has no {DOC_BEGIN} ... {DOC_END} section")
    c, cc, st = r["core"], r["core_plus_crypto"], r["stack"]
    goals = r["goals"]

    def verdict(key: str) -> str:
        got, goal = goals[key]
        return "met" if got <= goal else "**not met**"

    sizes = r["sizeof"]
    fx = r["feature_extractor"]
    pw = fx["per_window"]
    ram_row = (
        f"| <= 4 KiB static RAM excluding the download block buffer | "
        f"{r['core_static_ram_excluding_download_buffer_bytes']} B | {verdict('static_ram_excl_download_buf')} | "
        f"the agent object ({sizes.get('Agent', '?')} B; the core has no other static data) less its one download "
        f"buffer, the prefix buffer ({r['download_buffer_bytes']} B: the bundle's signed meta, the first message "
        "of a download, kept from its arrival until the last block is written; blocks are written to flash "
        "straight from the MQTT client's receive buffer, the application's). The parts are in "
        f"docs/device-agent.md (\"RAM\"), the largest after the prefix buffer: `BundleInfo` "
        f"({sizes.get('BundleInfo', '?')} B), `DriftWindow` ({sizes.get('DriftWindow', '?')} B), the report queue. "
        "Not counted either: the MQTT client's buffers and the calibrated-sample ring's storage (the "
        "application's feature window; 4096 B in this image's application part) |\n"
        f"| (no goal) all of the agent's static RAM, the download buffer included | {r['core_static_ram_bytes']} B | "
        "| the goal above is read as excluding the prefix buffer, the agent's one download buffer; it is also "
        "borrowed as boot scratch and for the trial health check's tensors when no download runs |"
    )
    body = f"""
Output of `device/targets/footprint.sh` at {source_state()} (written by
`python3 bench/footprint.py build/cortex-m --doc docs/footprint.md`):

```
{report.rstrip()}
```

In short: the core alone takes **{c['flash']} bytes of flash** (text + data after `--gc-sections`); with the
crypto port (the mbedTLS glue and mbedTLS itself, {r['parts']['mbedTLS']['text']} bytes of text for SHA-256
and ECDSA P-256 verification) **{cc['flash']} bytes**. The agent object that firmware places statically is
**{r['agent_object_bytes']} bytes**; the core has no other static data. The deepest stack of an agent event is
**{st['core']['bytes']} bytes** ({st['with_ports']['bytes']} bytes with the ports' own frames). No heap is
linked. The STM32 bootloader is {r['bootloader']['text']} bytes of text (its budget is 32 KiB, pages 0..15)
with a {st['bootloader']['bytes']}-byte worst-case stack.

| goal (issue 7) | measured | | where it comes from |
|---|---|---|---|
| core <= 16 KiB flash | {c['flash']} B | {verdict('core_flash_bytes')} | "core flash by source file" above |
{ram_row}
| stack <= 1.5 KiB | {st['core']['bytes']} B | {verdict('stack_bytes')} | the core-alone path above |

The feature extractor (`device/src/features`, library `tinyfleet_features`, apart from the core and not in its
goals) as the image links it: **{fx['flash']} bytes of flash**, **{fx['static_ram']} bytes of static RAM** (it
keeps no state: it reads the agent's sample ring in place and writes the caller's input tensor, here the
application's {APP_INPUT_BYTES}-byte buffer), and a worst-case stack of **{fx['stack']['bytes']} bytes** from
`features::extract`. `vib-window-v1` takes **{pw['instructions_per_window']['min']} instructions per window**
of 256 x 3 samples ({pw['instructions_per_window']['min']} to {pw['instructions_per_window']['max']} over
{len(pw['windows'])} windows, contiguous and wrapped in the ring), counted by QEMU
(`bench/feature_instructions.py`: `qemu-system-arm -M mps2-an386 -singlestep -d exec,nochain` logs every
executed instruction; those inside `tinyfleet::features` between two markers are one window's). That is an
instruction count, not a cycle count: from the executed instructions and the Cortex-M4 TRM's timings
(zero-wait-state memory) it is an estimated **{pw['cycles_per_window_estimate']['low']} to
{pw['cycles_per_window_estimate']['high']} cycles** per window, {pw['cycles_per_window_estimate']['low'] / 80e3:.2f}
to {pw['cycles_per_window_estimate']['high'] / 80e3:.2f} ms at 80 MHz (flash wait states, which the STM32L4's
prefetch and cache mostly hide, are not modelled).
"""
    before, rest = text.split(DOC_BEGIN, 1)
    _, after = rest.split(DOC_END, 1)
    path.write_text(before + DOC_BEGIN + "\n" + body + "\n" + DOC_END + after)


def print_report(r: dict) -> None:
    def row(name: str, s: dict[str, int]) -> str:
        return f"  {name:<44}{s['text']:>8}{s['data']:>8}{s['bss']:>8}"

    print(f"tinyfleet device agent footprint on Cortex-M4 ({r['compiler']})")
    print(f"flags: {r['flags']}\n")
    print(f"{r['image']['file']} (STM32L476RG: agent + STM32 flash port + mbedTLS crypto port), by part")
    print(f"  {'(linker map, after --gc-sections)':<44}{'text':>8}{'data':>8}{'bss':>8}")
    for part, s in r["parts"].items():
        print(row(part, s))
    print(row("- duplicate strings merged by the linker", r["map_overcount_merged_strings"]))
    print(row("= arm-none-eabi-size of the image", r["image"]))
    print()
    c, cc = r["core"], r["core_plus_crypto"]
    print(row("core alone", c) + f"   flash {c['flash']} B")
    print(row("core + crypto port (glue + mbedTLS)", cc) + f"   flash {cc['flash']} B")
    print(row("core library before --gc-sections", r["core_library_before_gc"]))
    print(f"  agent object (static, placed by the application): {r['agent_object_bytes']} B")
    print("  core flash by source file: " + ", ".join(f"{k} {v}" for k, v in r["core_flash_by_source"].items()))
    print("  largest core functions and tables: " + ", ".join(f"{k} {v}" for k, v in r["largest_core_sections"]))
    print("  sizeof on the target: " + ", ".join(f"{k} {v}" for k, v in r["sizeof"].items()))
    print(f"  mbedTLS static pool (crypto port): {r['mbedtls_pool_bytes']} B")
    print(f"  core static RAM (core data + bss + agent object): {r['core_static_ram_bytes']} B; excluding the "
          f"download buffer (the prefix buffer, {r['download_buffer_bytes']} B: the update's signed meta): "
          f"{r['core_static_ram_excluding_download_buffer_bytes']} B")
    print(row(f"bootloader {r['bootloader']['file']}", r["bootloader"]))
    print("\nworst-case stack (-fstack-usage frames over the -fcallgraph-info call graph):")
    for key, what in (("core", "core alone (indirect port calls not counted)"),
                      ("with_ports", "core + ports (each indirect call: the port method named at its call site)"),
                      ("through_a_port", "deepest path that goes through a port call"),
                      ("bootloader", "STM32 bootloader main")):
        s = r["stack"][key]
        print(f"  {what}: {s['bytes']} B from {s['entry']}")
        print(f"    path: {' > '.join(s['path'])}")
    if r["stack_cycles_cut"]:
        print(f"  call-graph cycles cut (counted once): {len(r['stack_cycles_cut'])}")
    fx = r["feature_extractor"]
    pw = fx["per_window"]
    print(f"\nfeature extractor (tinyfleet_features, apart from the core): flash {fx['flash']} B, static RAM "
          f"{fx['static_ram']} B, worst-case stack {fx['stack']['bytes']} B from {fx['stack']['entry']}")
    print(f"    path: {' > '.join(fx['stack']['path'])}")
    print(f"  vib-window-v1 per window (256 x 3 samples), {pw['qemu']}: {pw['instructions_per_window']['min']}"
          f"..{pw['instructions_per_window']['max']} instructions counted over {len(pw['windows'])} windows "
          f"({', '.join(sorted({w['layout'] for w in pw['windows']}))}); estimated "
          f"{pw['cycles_per_window_estimate']['low']}..{pw['cycles_per_window_estimate']['high']} cycles "
          "(bench/feature_instructions.py: an instruction count from QEMU's execution log, cycles from the "
          "Cortex-M4 TRM's timings, not cycle-accurate)")
    print(f"\nheap: {'NONE linked' if not r['heap_symbols'] else 'LINKED: ' + ', '.join(r['heap_symbols'])}"
          " (no malloc/calloc/realloc/free/_sbrk/operator new/delete in either image)")
    print("\ngoals (issue 7):")
    for key, (got, goal) in r["goals"].items():
        print(f"  {key:<30}{got:>8} <= {goal:<8}{'met' if got <= goal else 'NOT met'}")


if __name__ == "__main__":
    main()
