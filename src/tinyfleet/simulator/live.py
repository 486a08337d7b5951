"""The live summary `fleet-sim run` shows: online, devices by bundle, devices by state (rich), from a fleet's view
(`Fleet.view()`, or the view merged over worker processes: shards.py)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def summary(view: dict[str, Any], title: str = "fleet-sim") -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[b]{title}[/b]",
        f"devices {view['devices']}",
        f"online [green]{view['online']}[/green]",
        f"simulated time {view['simulated_s']:,.0f} s",
        f"MQTT sent {view['sent']:,} / received {view['received']:,}",
    )
    bundles = Table(title="by bundle", title_justify="left")
    bundles.add_column("bundle")
    bundles.add_column("devices", justify="right")
    for name, n in sorted(view["by_bundle"].items()):
        bundles.add_row(name, str(n))
    states = Table(title="by state", title_justify="left")
    states.add_column("state")
    states.add_column("devices", justify="right")
    for name, n in sorted(view["by_state"].items()):
        states.add_row(name, str(n))
    grid = Table.grid(padding=(0, 4))
    grid.add_row(bundles, states)
    return Group(head, grid)
