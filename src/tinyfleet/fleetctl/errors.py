"""Turning errors into one line on stderr and an exit code: the CLI's only error edge."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer

from tinyfleet.bundles.errors import BundleError, ComponentFormatError, KeyFileError

EXIT_REFUSED = 1  # the input was understood and refused (bad bundle, failed check)
EXIT_USAGE = 2  # the input could not be used (missing file, malformed JSON, bad option)
EXIT_TIMEOUT = 3  # `rollout wait`: the rollout was still running when --timeout ran out


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


@contextmanager
def cli_errors(extra: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Map the errors users can cause to one line and an exit code; anything else is a bug and propagates."""
    try:
        yield
    except BundleError as e:
        fail(str(e), EXIT_REFUSED)
    except (ComponentFormatError, KeyFileError) as e:
        fail(str(e))
    except extra as e:
        fail(str(e))


def read_file(path: str | Path, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        fail(f"cannot read {what} {path}: {e.strerror}")
