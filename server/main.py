"""`fleet-server` entry point."""

import typer

app = typer.Typer(
    add_completion=False,
    help="tinyfleet fleet server (REST API, MQTT publisher, rollout engine). Not yet implemented: "
    "this command only prints its help until the server lands.",
    no_args_is_help=True,
)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main() -> None:
    app()
