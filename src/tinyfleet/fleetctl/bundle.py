"""`fleetctl bundle`: build (through the model gate), inspect and verify signed bundles."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from inspect import Parameter, Signature, signature
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tinyfleet.bundles import (
    Calibration,
    Deployment,
    Thresholds,
    TrustedKeys,
    VerifyPolicy,
    load_private_key,
    parse_bundle,
    verify_bundle,
)
from tinyfleet.bundles.inspect import describe
from tinyfleet.bundles.release import ReleaseField, ReleaseParts, deployment_parts, release_fields

from .errors import EXIT_REFUSED, cli_errors, fail, read_file

app = typer.Typer(no_args_is_help=True, help="Build, inspect and verify signed bundles.")
err = Console(stderr=True)


def _json_file(path: Path, what: str) -> object:
    try:
        return json.loads(read_file(path, what))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        fail(f"{what} {path} is not valid JSON: {e}")


def _digest_arg(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    if Path(value).is_file():
        return hashlib.sha256(read_file(value, what)).digest()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        fail(f"--{what} must be a file or a 64-character hex SHA-256, got {value!r}")
    return raw


# Release fields of these declared types are given as a path (or, for a digest, a path or hex): the option's
# type, and how its value is read.
_READ: dict[object, tuple[object, Callable[[Any, str], Any]]] = {
    bytes: (Path, read_file),
    Thresholds: (Path, _json_file),
    Calibration: (Path, _json_file),
    bytes | None: (str | None, _digest_arg),
}


def _option(name: str, kind: object, spec: ReleaseField, default: Any) -> Parameter:
    annotation = _READ[kind][0] if kind in _READ else list[str] if kind == tuple[str, ...] else kind
    if isinstance(default, tuple):
        default = list(default)
    return Parameter(name, Parameter.KEYWORD_ONLY, annotation=annotation,
                     default=typer.Option(default, spec.flag, help=spec.help))  # fmt: skip


def release_options() -> list[Parameter]:
    """`fleetctl bundle build`'s options for the release fields, made from their declaration (ReleaseParts)."""
    params = []
    for name, kind, spec, default in release_fields():
        group = deployment_parts() if kind is Deployment else ((name, kind, spec, default),)
        params += [_option(*p) for p in group]
    return params


def _release_values(given: dict[str, Any]) -> dict[str, Any]:
    """The options' values as ReleaseParts.from_values takes them: files read, the deployment grouped."""
    values: dict[str, Any] = {}
    for name, kind, spec, _default in release_fields():
        if kind is Deployment:
            values[name] = {part: given[part] for part, *_ in deployment_parts()}
        elif kind in _READ and given[name] is not None:
            values[name] = _READ[kind][1](given[name], spec.flag.removeprefix("--"))
        else:
            values[name] = given[name]
    return values


def build(
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the signed bundle."),
    key: Path = typer.Option(..., "--key", help="PEM private signing key (fleetctl keys init)."),
    hw: str = typer.Option(..., "--hw", help="Hardware class / profile name, e.g. stm32l4."),
    val: Path = typer.Option(..., "--val", help="Validation set .npz (inputs, labels) for the model gate."),
    float_ref: Path | None = typer.Option(None, "--float", help="Float reference: .tflite or reference outputs."),
    profiles: Path | None = typer.Option(None, "--profiles", help="Extra hardware profiles file."),
    report_out: Path | None = typer.Option(None, "--report", help="Also write the gate's JSON report here."),
    **release: Any,
) -> None:
    """Run the model gate, then build and sign a bundle. Refuses to sign when any gate check fails."""
    from tinyfleet.bundles.gate import GateInputError, load_float_reference, load_validation_set
    from tinyfleet.bundles.profiles import load_profile
    from tinyfleet.bundles.release import GateRefused, ReleaseError, build_release

    with cli_errors(extra=(GateInputError, ReleaseError)):
        signing_key = load_private_key(key)
        parts = ReleaseParts.from_values(_release_values(release))
        profile = load_profile(hw, profiles)
        val_set = load_validation_set(val)
        ref = load_float_reference(float_ref) if float_ref else None
        try:
            data, report = build_release(parts, signing_key, profile, val=val_set, float_ref=ref)
        except GateRefused as refused:
            if report_out:
                report_out.write_text(refused.report.to_json())
            for c in refused.report.failures():
                err.print(f"[red]FAIL[/red] {c.name}: {c.figure} {c.detail}".rstrip())
            fail(str(refused), EXIT_REFUSED)
        except ReleaseError as refused:
            fail(str(refused), EXIT_REFUSED)
        if report_out:
            report_out.write_text(report.to_json())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror}")
    typer.echo(
        f"{out}: {len(data)} bytes, bundle {parts.bundle_id}, signed, model gate passed ({len(report.checks)} checks)"
    )


# The release fields' options join the fixed ones: a new release field is an edit of ReleaseParts only.
_fixed = [p for p in signature(build, eval_str=True).parameters.values() if p.kind != p.VAR_KEYWORD]
build.__signature__ = Signature([*_fixed, *release_options()])  # type: ignore[attr-defined]
app.command("build")(build)


@app.command("inspect")
def inspect(
    file: Path = typer.Argument(..., help="Bundle file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show a bundle's header, manifest and components (structure only: use `verify` to check trust)."""
    with cli_errors():
        info = describe(parse_bundle(read_file(file, "bundle")))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    out = Console()
    t = Table(title=f"bundle {info['bundle_id']}", show_header=False)
    for k in ("hardware_class", "device_scope", "security_counter", "created", "expires", "rollback_target",
              "total_len"):
        t.add_row(k, str(info[k]))
    for k, v in info["deployment"].items():
        t.add_row(k, str(v))
    mc = info["model_contract"]
    for side in ("input", "output"):
        s = mc[side]
        t.add_row(f"model {side}", f"{s['dtype']} {s['shape']} scale={s['scale']:.6g} zero_point={s['zero_point']}")
    t.add_row("feature_extractor", mc["feature_extractor_version"])
    t.add_row("arena_bytes", str(mc["arena_bytes"]))
    for k, v in info["provenance"].items():
        t.add_row(k, str(v))
    t.add_row("signed by key", info["signature"]["key_id"])
    out.print(t)
    c = Table(title="components")
    for col in ("type", "version", "offset", "length", "sha256"):
        c.add_column(col)
    for comp in info["components"]:
        c.add_row(comp["type"], comp["version"], str(comp["offset"]), str(comp["length"]), comp["sha256"])
    out.print(c)


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="Bundle file."),
    key: list[Path] = typer.Option(..., "--key", help="Trusted public key PEM (repeatable, for rotation)."),
    hw: str | None = typer.Option(None, "--hw", help="Require this hardware class."),
    device: str | None = typer.Option(None, "--device", help="Device id, checked against a device scope."),
    min_counter: int = typer.Option(0, "--min-counter", help="The device's stored security counter."),
    now: int | None = typer.Option(None, "--now", help="Unix time to check expiry against (default: now)."),
) -> None:
    """Verify signature, policy and every payload hash. Exit 0 when the bundle is acceptable."""
    with cli_errors():
        keys = TrustedKeys.from_pem_files(key)
        b = verify_bundle(read_file(file, "bundle"), keys, VerifyPolicy(hw, device, min_counter, now))
    m = b.manifest
    typer.echo(
        f"OK {file}: bundle {m.bundle_id} for {m.hardware_class}, counter {m.security_counter}, "
        f"signed by {b.signature.key_id.hex()}, {len(b.components)} components verified"
    )
