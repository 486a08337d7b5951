"""Capture what native code writes to file descriptor 2 (TFLM reports errors and allocations only there)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


class Captured:
    def __init__(self) -> None:
        self.text = ""


@contextmanager
def captured_fd2() -> Iterator[Captured]:
    """Redirect fd 2 to a temporary file for the block; the text is in `.text` once the block exits."""
    result = Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield result
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            result.text = tmp.read().decode("utf-8", "replace")
