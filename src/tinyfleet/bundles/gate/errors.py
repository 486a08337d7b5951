"""The model gate's one error family: the input it was given is unusable (not a verdict on the model)."""

from __future__ import annotations


class GateInputError(Exception):
    """Bad input to the gate: not a flatbuffer, truncated, unknown profile, mismatched validation set...

    `str()` is a one-line message naming the problem; the CLI prints it as is.
    """

    def __str__(self) -> str:
        return " ".join(str(self.args[0] if self.args else "invalid gate input").split())
