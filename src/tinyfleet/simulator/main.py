"""`fleet-sim`: simulated devices running the real agent core, against a real fleet-server."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import typer
from rich.console import Console

from tinyfleet.simulator.api import ApiError
from tinyfleet.simulator.fleet import FleetSpec, ProvisionError, SpecError, parse_broker_node, parse_mix, parse_tags
from tinyfleet.simulator.procfleet import WorkerError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="fleet-sim: thousands of simulated devices, each running the real C++ agent core over its own MQTT "
    "connection, with drifting sensors and chaos (docs/simulator.md).",
)
console = Console(stderr=True)  # the live view; stdout carries the JSON result


@app.callback()
def _root() -> None:
    """fleet-sim commands."""


def _fail(msg: str, code: int = 2) -> None:
    typer.echo(f"fleet-sim: error: {msg}", err=True)
    raise typer.Exit(code)


@app.command()
def run(
    devices: int = typer.Option(..., "--devices", "-n", help="How many simulated devices."),
    hw: str = typer.Option("esp32s3:60%,stm32l4:40%", "--hw", help="Hardware class mix, e.g. esp32s3:60%,stm32l4:40%"),
    tags: list[str] = typer.Option([], "--tags", help="Extra tag name=value on every device (repeatable)."),
    api: str = typer.Option("http://127.0.0.1:8080", "--api", envvar="TINYFLEET_SERVER",
                            help="The fleet-server's base URL (env TINYFLEET_SERVER, as fleetctl)."),  # fmt: skip
    token: str = typer.Option(None, "--token", help="Operator token (default: $TINYFLEET_TOKEN)."),
    trust: list[Path] = typer.Option(..., "--trust", help="Public key (PEM) the devices trust (repeatable)."),
    factory: list[Path] = typer.Option(..., "--factory", help="Factory bundle per hardware class (repeatable)."),
    seed: int = typer.Option(1, "--seed", help="Seed for the devices' sensors, batteries and ids."),
    prefix: str = typer.Option("sim", "--prefix", help="Device ids are <prefix>-00000, <prefix>-00001, ..."),
    duration: float = typer.Option(0, "--duration", help="Stop after this many seconds (0: run until Ctrl-C)."),
    workers: int = typer.Option(0, "--workers", help="Run the devices in this many worker processes, one asyncio "
                                "loop each (0: all in this process)."),  # fmt: skip
    broker_node: list[str] = typer.Option(
        [], "--broker-node", help="A node (host:port) of the server's clustered broker (repeatable): the devices "
        "spread over the nodes, MQTT 3.1.1, each falling back to the others (default: where their credentials say)."),
) -> None:
    """Provision N devices through the API and run them until stopped, with a live summary."""
    from tinyfleet.simulator.run_cmd import RunOptions
    from tinyfleet.simulator.run_cmd import run as run_fleet

    token = token or os.environ.get("TINYFLEET_TOKEN", "")
    if not token:
        _fail("an operator token is needed: --token or TINYFLEET_TOKEN")
    if workers < 0:
        _fail("--workers must be 0 or more")
    try:
        spec = FleetSpec(devices, seed=seed, mix=parse_mix(hw), tags=parse_tags(tags), prefix=prefix)
        nodes = tuple(parse_broker_node(n) for n in broker_node)
        opts = RunOptions(spec, api, token, trust, factory, duration or None, workers, nodes)
        result = asyncio.run(run_fleet(opts, console))
    except (SpecError, ApiError, ProvisionError, WorkerError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    typer.echo(json.dumps(result, sort_keys=True))


@app.command()
def chaos(
    devices: int = typer.Option(50, "--devices", "-n", help="How many simulated devices."),
    scenario: str = typer.Option(..., "--scenario", "-s", help="Scenario name (fleet-sim scenarios lists them)."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same outcome."),
    workdir: Path = typer.Option(None, "--workdir", help="Server data and logs (default: a temporary directory)."),
    json_out: Path = typer.Option(None, "--json", help="Also write the JSON report here."),
    timeout: float = typer.Option(300, "--timeout", help="Seconds to wait for the rollouts to end."),
    bundle: Path = typer.Option(None, "--bundle", help="Your own bundle as the release under test (instead of "
                                "the sample release); the fleet is all of its hardware class."),
    trust: list[Path] = typer.Option([], "--trust", help="Public key (PEM) that signed --bundle (repeatable)."),
) -> None:
    """Start a fleet-server, run a scenario against N devices, check the invariants; exit 1 on a violation."""
    import tempfile

    from tinyfleet.simulator.chaos import report, runner
    from tinyfleet.simulator.chaos.scenarios import SCENARIOS

    sc = SCENARIOS.get(scenario)
    if sc is None:
        _fail(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    if devices < 1:
        _fail("--devices must be at least 1")
    release = _operator_release(bundle, trust, sc) if bundle is not None else None
    with tempfile.TemporaryDirectory(prefix="fleet-sim-chaos-") as tmp:
        try:
            result = asyncio.run(runner.run(sc, devices, seed, workdir or Path(tmp), timeout,  # type: ignore[arg-type]
                                            release=release))  # fmt: skip
        except (RuntimeError, ApiError) as e:
            _fail(str(e), 3)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    rep = report.to_json(result)
    text = json.dumps(rep, indent=2, sort_keys=True)
    if json_out:
        json_out.write_text(text + "\n")
    report.print_human(rep, console)
    typer.echo(text)
    raise typer.Exit(0 if rep["passed"] else 1)


def _operator_release(path: Path, trust: list[Path], sc: object) -> object:
    """Check `--bundle` before any world starts: readable, signed by a `--trust` key, of a simulated class, not
    below the factory release's counter, for a scenario that rolls out a good release."""
    from tinyfleet.bundles import BundleError, TrustedKeys, verify_bundle
    from tinyfleet.simulator.chaos.runner import OperatorRelease
    from tinyfleet.simulator.chaos.scenarios import SCENARIOS, Expect
    from tinyfleet.simulator.releases import HARDWARE_CLASSES, bundle_id
    from tinyfleet.simulator.world import BASE

    good = [n for n, s in SCENARIOS.items() if s.expect is Expect.COMPLETED and n != "drift"]
    if sc.name not in good:  # type: ignore[attr-defined]
        _fail(f"scenario {sc.name!r} rolls out its own release; --bundle works with: {', '.join(good)}")  # type: ignore[attr-defined]
    if not trust:
        _fail("--bundle needs --trust with the public key that signed it")
    try:
        data = path.read_bytes()
    except OSError as e:
        _fail(f"cannot read bundle {path}: {e.strerror}")
    try:
        keys = TrustedKeys.from_pem_files(trust)
        m = verify_bundle(data, keys).manifest
    except (BundleError, OSError, ValueError) as e:
        _fail(f"{path} cannot be used: {e}")
    if m.hardware_class not in HARDWARE_CLASSES:
        _fail(f"{path} is for {m.hardware_class!r}; fleet-sim simulates {', '.join(HARDWARE_CLASSES)}")
    if m.bundle_id == bundle_id(BASE, m.hardware_class):
        _fail(f"{path} has bundle id {m.bundle_id!r}, the simulated factory release's; build yours with another --id")
    if m.security_counter < BASE.counter:
        _fail(f"{path} has security counter {m.security_counter}, below the factory release's {BASE.counter}")
    return OperatorRelease(data, m.bundle_id, m.hardware_class, tuple(trust))


@app.command()
def demo(
    devices: int = typer.Option(200, "--devices", "-n", help="How many simulated devices."),
    seed: int = typer.Option(1, "--seed"),
    workdir: Path = typer.Option(Path("demo-out/fleet-sim"), "--workdir", help="Server data and logs."),
    keep: bool = typer.Option(False, "--keep", envvar="DEMO_KEEP",
                              help="Keep the server (and its dashboard) and the fleet running after the demo, "
                              "until Ctrl-C."),  # fmt: skip
) -> None:
    """The product demo: staged rollout, a bad firmware halted at canary, drift answered by recalibration."""
    import shutil

    from tinyfleet.simulator import demo as demo_mod

    if devices < 10:
        _fail("the demo needs at least 10 devices")
    shutil.rmtree(workdir, ignore_errors=True)
    out = Console()
    try:
        code = asyncio.run(demo_mod.run(workdir, devices, seed, out, keep=keep))
    except (RuntimeError, ApiError) as e:
        _fail(str(e), 3)
    raise typer.Exit(code)


@app.command()
def scenarios() -> None:
    """List the chaos scenarios."""
    from tinyfleet.simulator.chaos.scenarios import SCENARIOS

    for sc in SCENARIOS.values():
        typer.echo(f"{sc.name:15} {sc.summary}")


def main() -> None:
    app()
