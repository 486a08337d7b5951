"""Power-cut soak of the device agent, written to bench/results/soak.json.

Random device lives for a fixed time (device/bench/powercut_soak.cpp, Release build): each life is one of the
24 flash configurations and 2-4 random update targets (installs that confirm, installs whose health
check fails and are reverted, downloads resumed after a cut or a link drop), under random power cuts (before,
after, or torn at a random length, 0-3 per update, also during recovery) and random link drops. Counts device
lives, boots, fired cuts and unrecoverable lives (a boot with no verified image, or an update that does not end
where it would without faults). Goal: >= 10,000 lives, 0 unrecoverable.

Reproducible by seed: life i draws everything from (seed, i); the workers run disjoint ranges of lives, and
`build/device-bench-release/powercut_soak <seed> 0 <i> 1` replays life i.

Run: .venv/bin/python bench/bench_soak.py [--seconds N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402

SEED = 20261207
SECONDS = 300.0
WORKERS = 2  # the machine's cores (the brief's -j2)
LIVES_PER_WORKER_RANGE = 1_000_000_000  # worker k runs lives k * this, k * this + 1, ...
GOAL_LIVES = 10_000
COUNTS = ("lives", "boots", "cuts_armed", "cuts_fired", "torn_fired", "updates", "confirmed", "reverted", "exhausted",
          "resumed", "link_drops", "unrecoverable")


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_soak: {' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def build() -> Path:
    build_dir = ROOT / "build" / "device-bench-release"
    run(["cmake", "-S", "device", "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"])
    run(["cmake", "--build", str(build_dir), "-j2", "--target", "powercut_soak"])
    return build_dir / "powercut_soak"


def soak(exe: Path, seed: int, seconds: float) -> list[dict[str, object]]:
    procs = [
        subprocess.Popen([str(exe), str(seed), str(seconds), str(k * LIVES_PER_WORKER_RANGE)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(WORKERS)
    ]
    rows = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"bench_soak: powercut_soak failed:\n{out[-2000:]}{err[-2000:]}")
        if err:
            print(err, end="", file=sys.stderr)
        rows.append(json.loads(out))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help="run time of each worker")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    workers = soak(build(), args.seed, args.seconds)
    total = {k: sum(int(w[k]) for w in workers) for k in COUNTS}  # type: ignore[call-overload]
    unrecoverable = [life for w in workers for life in w["unrecoverable_lives"]]  # type: ignore[attr-defined]
    print(f"{total['lives']} device lives in {args.seconds:.0f} s x {WORKERS} workers (seed {args.seed}): "
          f"{total['boots']} boots, {total['cuts_fired']} power cuts fired of {total['cuts_armed']} armed "
          f"({total['torn_fired']} torn), {total['updates']} updates ({total['confirmed']} confirmed, "
          f"{total['reverted']} reverted, {total['exhausted']} of them healthy trials whose boots ran out, "
          f"{total['resumed']} resumed), {total['link_drops']} link drops, "
          f"{total['unrecoverable']} unrecoverable (goal: >= {GOAL_LIVES} lives, 0 unrecoverable)")
    path = write_result("soak", {
        "seed": args.seed, "seconds_per_worker": args.seconds, "workers": WORKERS,
        "goal": {"lives": GOAL_LIVES, "unrecoverable": 0},
        "goal_met": total["lives"] >= GOAL_LIVES and total["unrecoverable"] == 0,
        "total": total, "unrecoverable_lives": unrecoverable, "per_worker": workers,
    })
    print(f"wrote {path.relative_to(ROOT)}")
    if total["unrecoverable"]:
        sys.exit(f"bench_soak: {total['unrecoverable']} unrecoverable lives: {unrecoverable}")


if __name__ == "__main__":
    main()
