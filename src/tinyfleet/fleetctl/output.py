"""How fleetctl prints: JSON for scripts (`--json` on every command), tables and lines for people.

Tables are never truncated: when a table is wider than the terminal (or the 80 columns rich assumes off a
terminal), it is printed at its own width and the terminal wraps the lines, so ids stay whole.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tinyfleet.bundles.timefmt import iso_utc

JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of text.")


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


def table(*columns: str) -> Table:
    t = Table(*columns)
    for c in t.columns:
        c.no_wrap = True
        c.overflow = "fold"
    return t


def print_table(t: Table) -> None:
    console = Console()
    width = console.measure(t, options=console.options.update_width(100_000)).maximum
    if width > console.width:
        console = Console(width=width)
    console.print(t)


def iso(ts: float | int | None) -> str:
    """A Unix time as ISO 8601 UTC (`2026-12-06T20:30:00Z`), or "-"."""
    return "-" if ts is None else iso_utc(ts)
