"""`fleetctl`, the operator's command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from . import server_bundles
from .admin import audit, tokens_app
from .bundle import app as bundle_app
from .devices import app as devices_app
from .drift import app as drift_app
from .fleet_ca import app as ca_app
from .keys import app as keys_app
from .model import app as model_app
from .rollouts import app as rollouts_app

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="tinyfleet operator CLI: keys, signed bundles, models, devices, rollouts, drift, audit and tokens. "
    "Every command takes --json; errors are one line on stderr, exit 1 refused, 2 unusable input.",
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(bundle_app, name="bundle")
app.add_typer(model_app, name="model")
app.add_typer(devices_app, name="devices")
app.add_typer(rollouts_app, name="rollout")
app.add_typer(drift_app, name="drift")
app.add_typer(tokens_app, name="tokens")
app.add_typer(ca_app, name="ca")
app.command("audit")(audit)
server_bundles.register(bundle_app)  # list/show/publish/retire: the bundles stored on the server


def main() -> None:
    app()
