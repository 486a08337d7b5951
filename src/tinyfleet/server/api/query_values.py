"""A query parameter that /openapi.json declares with one value is refused when it comes several times (422),
instead of the last value silently winning."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Union, get_args, get_origin

from fastapi import Request

from tinyfleet.server.services.errors import Unprocessable


def _takes_several(annotation: object) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_several(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return any(_takes_several(a) for a in get_args(annotation))
    return origin in (list, set, frozenset, tuple) or annotation in (list, set, frozenset, tuple)


def one_value_each(request: Request) -> None:
    """An app-wide dependency: every scalar query parameter of the route at most once."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    for field in getattr(dependant, "query_params", ()):
        given = len(request.query_params.getlist(field.alias))
        if given > 1 and not _takes_several(field.field_info.annotation):
            raise Unprocessable(f"query parameter {field.alias!r} is given {given} times; it takes one value")
