"""The API's build request (`POST /api/v1/bundles/build`) takes exactly the declared release fields
(tinyfleet.bundles.release.ReleaseParts) with their declared names, defaults, descriptions and bounds: a
field added or changed by hand in the schema fails here."""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.release import ReleaseField, deployment_parts, release_fields
from tinyfleet.server.api.schemas import BundleBuild, DeploymentIn, PartIn

# The request fields that are not release fields: the profile and the model gate's validation set.
NOT_RELEASE_FIELDS = {"hardware_class", "validation_set_base64"}
_BOUNDS = ("min_length", "max_length", "ge", "gt", "le")


def _bounds(info: FieldInfo) -> dict[str, Any]:
    return {a: getattr(m, a) for m in info.metadata for a in _BOUNDS if hasattr(m, a)}


def _check(info: FieldInfo, spec: ReleaseField, default: Any) -> None:
    assert info.description == spec.help
    assert _bounds(info) == dict(spec.bounds)
    assert info.is_required() == (default is ...)
    if default is not ...:
        got = info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]
        assert got == (list(default) if isinstance(default, tuple) else default)


def test_build_request_takes_the_declared_release_fields() -> None:
    request = BundleBuild.model_fields
    keys = set()
    for name, kind, spec, default in release_fields():
        if spec.api is None:
            continue
        key, dot, inner = spec.api.partition(".")
        keys.add(key)
        if dot:  # a file travels with its version
            assert request[key].annotation is PartIn and inner in PartIn.model_fields, name
        elif kind is Deployment:
            assert request[key].annotation is DeploymentIn
        else:
            _check(request[key], spec, default)
    assert set(request) == keys | NOT_RELEASE_FIELDS


def test_deployment_request_takes_the_declared_deployment_fields() -> None:
    parts = {spec.api: (spec, default) for _name, _kind, spec, default in deployment_parts()}
    assert set(DeploymentIn.model_fields) == set(parts)
    for key, (spec, default) in parts.items():
        _check(DeploymentIn.model_fields[key], spec, default)
