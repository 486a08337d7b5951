"""A fleet split over worker processes (pure): who runs which device, and one view of them all.

Each worker process runs the devices whose plan index falls in its shard on its own asyncio loop and reports a
`view` of them (a JSON object, below). `merge` adds the workers' views into one with the same fields, so a
report or a live summary reads the same whether one process ran the fleet or several.

A view: devices, online, live (devices not bricked), by_bundle and by_state (name -> devices), simulated_s,
sent, received, connects, connect_failures, sizes ([payload bytes, QoS, messages] of every message sent or
received while recording), interpreters, errors (simulator errors, one per failed device), rss_bytes and
peak_rss_bytes (the process's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

SOURCE_ADDRESSES = 16  # loopback source addresses the devices spread over (127.0.0.1 ... 127.0.0.16)
COUNTS = ("devices", "online", "live", "sent", "received", "connects", "connect_failures", "interpreters",
          "rss_bytes", "peak_rss_bytes")  # fmt: skip


def shard(items: Sequence[T], index: int, shards: int) -> list[T]:
    """The items of worker `index` of `shards`: every shards-th one, so each worker gets the same mix."""
    if shards < 1 or not 0 <= index < shards:
        raise ValueError(f"worker {index} of {shards} does not exist")
    return list(items[index::shards])


def source_address(broker_host: str, device_index: int) -> str | None:
    """The local address a device connects from. One address has about 28,000 ephemeral ports towards one
    broker port, fewer than a large fleet needs, so devices of a broker on loopback spread over 127.0.0.1 to
    127.0.0.16 (all of 127/8 is this host); towards any other broker the system picks (None)."""
    if not (broker_host.startswith("127.") or broker_host == "localhost"):
        return None
    return f"127.0.0.{1 + device_index % SOURCE_ADDRESSES}"


Node = tuple[str, int]  # a broker node's host and port


def broker_node(nodes: Sequence[Node], device_index: int) -> tuple[Node, tuple[Node, ...]]:
    """The clustered broker node a device connects to (its home) and the others in the order it falls back to
    them: devices spread round-robin over the nodes, and a home's devices spread their fallbacks over the rest
    in turn, so one node's loss does not move its whole load onto one other node."""
    if not nodes:
        raise ValueError("a clustered broker needs at least one node")
    k = len(nodes)
    home = device_index % k
    rest = [nodes[(home + j) % k] for j in range(1, k)]
    turn = (device_index // k) % len(rest) if rest else 0
    return nodes[home], tuple(rest[turn:] + rest[:turn])


def paced_wall_step_s(devices: int, telemetry_budget_per_s: float, step_ms: int = 1000,
                      telemetry_period_s: float = 30.0, fastest_s: float = 0.05) -> float:
    """Wall seconds per simulated step that keep a fleet's telemetry at or below `telemetry_budget_per_s`
    messages per wall second (never faster than `fastest_s`, the one-process pace).

    Every device sends one telemetry window per `telemetry_period_s` simulated seconds, so simulated time
    itself sets the load on the server: a fleet faster than its server's ingest fills the broker's queue for
    the server, and beyond that queue the broker drops messages, state reports among them."""
    if devices < 1 or telemetry_budget_per_s <= 0:
        raise ValueError("pacing needs at least one device and a positive telemetry budget")
    per_step = devices * (step_ms / 1000) / telemetry_period_s  # telemetry messages per simulated step
    return max(fastest_s, per_step / telemetry_budget_per_s)


def sizes_to_json(sizes: Counter[tuple[int, int]]) -> list[list[int]]:
    return [[size, qos, n] for (size, qos), n in sorted(sizes.items())]


def sizes_from_json(rows: Iterable[Sequence[int]]) -> Counter[tuple[int, int]]:
    out: Counter[tuple[int, int]] = Counter()
    for size, qos, n in rows:
        out[(int(size), int(qos))] += int(n)
    return out


def merge(views: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One view of the whole fleet from its workers' views. Simulated time is the least any worker reached:
    each worker's clock runs on its own, and every device has lived at least that long."""
    if not views:
        raise ValueError("no worker views to merge")
    out: dict[str, Any] = {k: sum(int(v.get(k, 0)) for v in views) for k in COUNTS}
    for key in ("by_bundle", "by_state"):
        total: Counter[str] = Counter()
        for v in views:
            total.update(v.get(key, {}))
        out[key] = dict(sorted(total.items()))
    sizes: Counter[tuple[int, int]] = Counter()
    for v in views:
        sizes += sizes_from_json(v.get("sizes", []))
    out["sizes"] = sizes_to_json(sizes)
    out["simulated_s"] = min(float(v.get("simulated_s", 0.0)) for v in views)
    out["errors"] = [e for v in views for e in v.get("errors", [])]
    return out
