"""The live summary `fleet-sim run` shows: online, devices by bundle, devices by state (rich)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from tinyfleet.simulator.fleet import Fleet


def summary(fleet: Fleet, title: str = "fleet-sim") -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[b]{title}[/b]",
        f"devices {len(fleet.devices)}",
        f"online [green]{fleet.online()}[/green]",
        f"simulated time {fleet.clock.seconds:,.0f} s",
        f"MQTT sent {fleet.stats.sent:,} / received {fleet.stats.received:,}",
    )
    bundles = Table(title="by bundle", title_justify="left")
    bundles.add_column("bundle")
    bundles.add_column("devices", justify="right")
    for name, n in sorted(fleet.by_bundle().items()):
        bundles.add_row(name, str(n))
    states = Table(title="by state", title_justify="left")
    states.add_column("state")
    states.add_column("devices", justify="right")
    for name, n in sorted(fleet.by_state().items()):
        states.add_row(name, str(n))
    grid = Table.grid(padding=(0, 4))
    grid.add_row(bundles, states)
    return Group(head, grid)
