"""docs/operations.md stays true to the code: every setting, role and fleet-server command is documented."""

from __future__ import annotations

import re
from pathlib import Path

from tinyfleet.server.main import app
from tinyfleet.server.settings import Settings

DOC = (Path(__file__).resolve().parents[2] / "docs/operations.md").read_text()


def test_every_setting_is_in_the_table() -> None:
    rows = {m for line in DOC.splitlines() if line.startswith("| `") for m in re.findall(r"`([a-z_]+)`", line)}
    missing = [name for name in Settings.model_fields if name not in rows]
    assert missing == []


def test_every_command_is_documented() -> None:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    assert names == {"serve", "migrate", "create-token", "config"}
    for n in names:
        assert f"`fleet-server {n}" in DOC


def test_rollout_state_diagram_is_generated_from_the_table() -> None:
    from tinyfleet.server.rollouts.states import mermaid

    block = DOC.split("<!-- BEGIN GENERATED ROLLOUT STATES -->")[1].split("<!-- END GENERATED ROLLOUT STATES -->")[0]
    assert block.strip() == f"```mermaid\n{mermaid()}\n```"


def test_device_state_diagram_is_generated_from_the_table() -> None:
    from tinyfleet.server.rollouts.device_states import mermaid

    block = DOC.split("<!-- BEGIN GENERATED DEVICE STATES -->")[1].split("<!-- END GENERATED DEVICE STATES -->")[0]
    assert block.strip() == f"```mermaid\n{mermaid()}\n```"


def test_ca_rotation_steps_are_generated_from_the_table() -> None:
    from tinyfleet.server.broker.fleet_ca import markdown_table

    begin, end = "<!-- BEGIN GENERATED CA ROTATION STEPS -->", "<!-- END GENERATED CA ROTATION STEPS -->"
    assert DOC.split(begin)[1].split(end)[0].strip() == markdown_table()
