"""`fleet-sim` entry point."""

import typer

app = typer.Typer(
    add_completion=False,
    help="fleet-sim: simulated devices running the real agent core. Not yet implemented: "
    "this command only prints its help until the simulator lands.",
    no_args_is_help=True,
)


@app.callback(invoke_without_command=True)
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main() -> None:
    app()
