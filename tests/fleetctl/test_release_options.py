"""`fleetctl bundle build` offers exactly the declared release fields (tinyfleet.bundles.release.ReleaseParts),
each with its declared flag, help and default: an option added or changed by hand fails here."""

from __future__ import annotations

from dataclasses import fields

import typer

from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.release import deployment_parts, release_fields
from tinyfleet.fleetctl.main import app

# The options that are not release fields: where the bundle goes, the signing key, the profile, the gate's inputs.
NOT_RELEASE_FIELDS = {"out", "key", "hw", "val", "float_ref", "profiles", "report_out", "as_json"}


def _declared() -> dict[str, tuple]:
    out = {}
    for name, kind, spec, default in release_fields():
        group = deployment_parts() if kind is Deployment else ((name, kind, spec, default),)
        out.update({n: (s, d) for n, _k, s, d in group})
    return out


def test_the_declaration_has_the_seventeen_release_fields_and_every_deployment_field() -> None:
    assert len(release_fields()) == 17
    assert [p[0] for p in deployment_parts()] == [f.name for f in fields(Deployment)]


def test_build_options_are_the_declared_release_fields() -> None:
    build = typer.main.get_command(app).commands["bundle"].commands["build"]  # type: ignore[attr-defined]
    options = {p.name: p for p in build.params if p.param_type_name == "option"}
    declared = _declared()
    assert set(options) - {"help"} == NOT_RELEASE_FIELDS | set(declared)
    for name, (spec, default) in declared.items():
        opt = options[name]
        assert opt.opts == [spec.flag], name
        assert opt.help == spec.help, name
        assert opt.required == (default is ...), name
        if default is not ...:
            assert opt.default == (list(default) if isinstance(default, tuple) else default), name
