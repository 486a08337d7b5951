"""One worker process of a fleet spread over several: its shard of the devices on its own asyncio loop.

`ProcessFleet` (procfleet.py) starts it as `python -m tinyfleet.simulator.worker` and talks to it over pipes:
one JSON command per line on stdin, one JSON answer per line on stdout (nothing else is written there).

    {"cmd": "provision", ...}  -> {"ok": true} once its devices are provisioned and running, or {"error": "..."}
    {"cmd": "view"}            -> its view (shards.py)
    {"cmd": "record", "on": b} -> {"ok": true}; while on, message sizes are counted (for the bench's replay)
    {"cmd": "stop"}            -> its last view, after every device said goodbye; then it exits
    {"cmd": "unprovision"}     -> {"ok": true} once its devices are stopped and deleted from the server again
                                  (another worker's provisioning failed: the run leaves no half fleet)

The provision command carries the fleet's spec, the worker's shard, the server's URL and token, the trusted
keys (DER, hex), the factory bundle of each hardware class (a file path), the wall seconds per simulated step
and, on a clustered broker, its nodes ([host, port] each; fleet.py Fleet.provision).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tinyfleet.simulator import shards
from tinyfleet.simulator.api import FleetApi
from tinyfleet.simulator.fleet import Fleet, FleetSpec, plan_devices
from tinyfleet.simulator.limits import raise_open_files


async def provision(cmd: dict[str, Any]) -> tuple[Fleet, FleetApi]:
    spec = FleetSpec(**cmd["spec"])
    plans = shards.shard(plan_devices(spec), cmd["shard"], cmd["shards"])
    raise_open_files(len(plans) + 1024)
    fleet = Fleet([bytes.fromhex(k) for k in cmd["keys"]], wall_step_s=cmd.get("wall_step_s", 0.05))
    for p in plans:
        fleet.add(p)
    factory = {hw: Path(path).read_bytes() for hw, path in cmd["factory"].items()}
    api = FleetApi(cmd["api_url"], cmd["token"])
    nodes = [(str(h), int(port)) for h, port in cmd.get("nodes", [])]
    await fleet.provision(api, plans, factory, concurrency=cmd.get("concurrency", 4), nodes=nodes)
    fleet.start()
    return fleet, api


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    fleet: Fleet | None = None
    api: FleetApi | None = None

    def answer(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            what = cmd.get("cmd")
            if what == "provision":
                try:
                    fleet, api = await provision(cmd)
                except Exception as e:  # the coordinator reports it and stops every worker
                    answer({"error": f"{type(e).__name__}: {e}"})
                    continue
                answer({"ok": True})
            elif what == "view" and fleet is not None:
                answer(fleet.view())
            elif what == "record" and fleet is not None:
                fleet.stats.sizes = Counter() if cmd.get("on") else None
                answer({"ok": True})
            elif what == "unprovision" and fleet is not None and api is not None:
                fleet.stop()
                for d in fleet.devices:
                    with contextlib.suppress(Exception):
                        await api.delete_device(d.id)
                answer({"ok": True})
            elif what == "stop":
                if fleet is not None:
                    fleet.stop()
                    await asyncio.sleep(0.5)  # the goodbyes go out through the loop's writers
                answer(fleet.view() if fleet is not None else {})
                return
            else:
                answer({"error": f"unknown or premature command {what!r}"})
    finally:
        if api is not None:
            await api.close()


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
