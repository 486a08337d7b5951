"""A fleet spread over worker processes, one asyncio loop each (worker.py), seen as one.

The coordinator holds no device: each worker provisions and runs its shard (shards.py) against the same
server, and `view` merges what the workers report into the view a one-process `Fleet` gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from tinyfleet.simulator import shards
from tinyfleet.simulator.fleet import FleetSpec, ProvisionError, poll_until


class WorkerError(RuntimeError):
    """A worker process failed or answered with an error; the message names the worker."""


class _Worker:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index, self.proc = index, proc
        self.lock = asyncio.Lock()

    async def ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self.lock:
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await self.proc.stdin.drain()
            line = await self.proc.stdout.readline()
        if not line:
            raise WorkerError(f"fleet worker {self.index} exited (code {await self.proc.wait()})")
        got: dict[str, Any] = json.loads(line)
        if "error" in got:
            raise WorkerError(f"fleet worker {self.index}: {got['error']}")
        return got


class ProcessFleet:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a fleet needs at least one worker process")
        self.count = workers
        self.workers: list[_Worker] = []
        self.last: dict[str, Any] | None = None  # the merged view the workers gave when they stopped

    async def start(self, spec: FleetSpec, api_url: str, token: str, keys: list[bytes], factory: dict[str, Path],
                    concurrency: int = 4, wall_step_s: float = 0.05,
                    nodes: Sequence[tuple[str, int]] = ()) -> None:  # fmt: skip
        """Start the workers; each provisions its shard through the API and starts its devices."""
        for i in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tinyfleet.simulator.worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, limit=2**24,
            )  # fmt: skip
            self.workers.append(_Worker(i, proc))
        base = {
            "cmd": "provision",
            "spec": {"devices": spec.devices, "seed": spec.seed, "mix": spec.mix, "tags": spec.tags,
                     "prefix": spec.prefix},  # fmt: skip
            "shards": self.count,
            "api_url": api_url,
            "token": token,
            "keys": [k.hex() for k in keys],
            "factory": {hw: str(p) for hw, p in factory.items()},
            "concurrency": max(1, concurrency // self.count),
            "wall_step_s": wall_step_s,
            "nodes": [list(n) for n in nodes],
        }
        results = await asyncio.gather(*(w.ask({**base, "shard": w.index}) for w in self.workers),
                                       return_exceptions=True)  # fmt: skip
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # A failed worker removed the devices it had registered; the others remove theirs: no half fleet.
            for w, r in zip(self.workers, results, strict=True):
                if not isinstance(r, BaseException):
                    with contextlib.suppress(WorkerError, ConnectionError):
                        await w.ask({"cmd": "unprovision"})
            await self.stop()
            raise ProvisionError(f"{errors[0]} (every device this run registered was removed again)") from errors[0]

    async def view(self) -> dict[str, Any]:
        if not self.workers:
            if self.last is None:
                raise WorkerError("the fleet's workers are not running")
            return self.last
        return shards.merge(await asyncio.gather(*(w.ask({"cmd": "view"}) for w in self.workers)))

    async def record(self, on: bool) -> None:
        """Count message sizes (for the bench's replay) from now on, or stop counting."""
        await asyncio.gather(*(w.ask({"cmd": "record", "on": on}) for w in self.workers))

    async def wait_for(self, pred: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.5) -> bool:
        return await poll_until(pred, timeout_s, poll_s)

    async def stop(self) -> dict[str, Any] | None:
        """Every device says goodbye; the workers' last merged view (None if none answered)."""
        views = []
        for w in self.workers:
            with contextlib.suppress(WorkerError, TimeoutError, ConnectionError):
                views.append(await asyncio.wait_for(w.ask({"cmd": "stop"}), 120))
            if w.proc.returncode is None:
                try:
                    await asyncio.wait_for(w.proc.wait(), 30)
                except TimeoutError:
                    w.proc.kill()
                    await w.proc.wait()
        self.workers = []
        views = [v for v in views if v]
        self.last = shards.merge(views) if views else None
        return self.last

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers]
