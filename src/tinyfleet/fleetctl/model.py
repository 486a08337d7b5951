"""`fleetctl model validate`: run the model gate on a .tflite and print its report (table or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from .errors import EXIT_REFUSED, cli_errors, read_file

if TYPE_CHECKING:
    from tinyfleet.bundles.gate import GateReport
    from tinyfleet.bundles.manifest import TensorSpec

app = typer.Typer(no_args_is_help=True, help="Check models against the model gate.")

_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def _spec(s: TensorSpec) -> str:
    return f"{s.dtype.name.lower()} {list(s.shape)} scale {s.scale:g} zero point {s.zero_point}"


def _print_table(report: GateReport, model: Path, hw: str) -> None:
    out = Console(width=160)
    out.print(f"model {model}  profile {hw}")
    out.print(f"input  {_spec(report.input)}")
    out.print(f"output {_spec(report.output)}")
    table = Table("check", "status", "figure", "detail")
    for c in report.checks:
        table.add_row(c.name, f"[{_STYLE[c.status]}]{c.status.upper()}[/]", c.figure, c.detail)
    out.print(table)
    if report.strata:
        with_float = any("float_accuracy" in v for v in report.strata.values())
        strata = Table("stratum", "samples", "accuracy (TFLM)", *(["float reference"] if with_float else []))
        for k, v in report.strata.items():
            extra = [f"{v['float_accuracy']:.4f}"] if with_float else []
            strata.add_row(k, str(v["samples"]), f"{v['accuracy']:.4f}", *extra)
        out.print(strata)
    verdict = "[green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    out.print(f"model gate {verdict}")


@app.command("validate")
def validate(
    model: Path = typer.Argument(..., help="The .tflite model to check."),
    hw: str = typer.Option(..., "--hw", help="Hardware profile name, e.g. esp32s3 or stm32l4."),
    val: Path | None = typer.Option(None, "--val", help="Validation set .npz (inputs, labels, optional tags)."),
    float_ref: Path | None = typer.Option(None, "--float", help="Float reference: .tflite, or outputs .npy/.npz."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
    profiles: Path | None = typer.Option(None, "--profiles", help="Extra hardware profiles file (TOML)."),
    max_latency_ms: int = typer.Option(100, "--max-latency-ms", min=1, help="The bundle's max inference latency."),
    peak_ram: int | None = typer.Option(
        None, "--peak-ram", min=1, help="The bundle's RAM budget for the model (default: the profile's model SRAM)."
    ),
    min_accuracy: float = typer.Option(0.90, "--min-accuracy", help="Minimum TFLM accuracy on the validation set."),
    max_drop: float = typer.Option(
        0.02, "--max-accuracy-drop", help="Maximum accuracy drop against the float reference."
    ),
    max_saturation: float = typer.Option(0.02, "--max-saturation", help="Flag layers above this share at int8 limits."),
    golden: int = typer.Option(8, "--golden-vectors", help="Golden vectors to pick, stratified by class (1..64)."),
) -> None:
    """Run every gate check; exit 1 when one fails, 2 when the input is unusable."""
    from tinyfleet.bundles.gate import (
        GateConfig,
        GateInputError,
        load_float_reference,
        load_validation_set,
        validate_model,
    )
    from tinyfleet.bundles.manifest import Deployment
    from tinyfleet.bundles.profiles import load_profile

    with cli_errors(extra=(GateInputError,)):
        data = read_file(model, "model")
        profile = load_profile(hw, profiles)
        config = GateConfig(
            min_accuracy=min_accuracy, max_accuracy_drop=max_drop, max_saturation=max_saturation, golden_vectors=golden
        )
        deployment = Deployment(
            min_battery_pct=0,
            max_latency_ms=max_latency_ms,
            peak_ram_bytes=peak_ram if peak_ram is not None else profile.model_sram_bytes,
        )
        report = validate_model(
            data,
            profile,
            deployment,
            val=load_validation_set(val) if val is not None else None,
            float_ref=load_float_reference(float_ref) if float_ref is not None else None,
            config=config,
        )
    if as_json:
        typer.echo(report.to_json(), nl=False)
    else:
        _print_table(report, model, hw)
    if not report.passed:
        raise typer.Exit(EXIT_REFUSED)
