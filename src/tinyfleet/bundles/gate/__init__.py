"""The model gate: every model is checked here before a bundle carrying it can be signed.

`validate_model` runs the checks (docs/model-gate.md) against a hardware profile and the bundle's
deployment metadata and returns a `GateReport`; `GateInputError` means the input itself was unusable.
"""

from .config import GateConfig
from .datasets import FloatReference, ValidationSet, load_float_reference, load_validation_set
from .errors import GateInputError
from .report import CheckResult, GateReport
from .validate import validate_model

__all__ = [
    "CheckResult",
    "FloatReference",
    "GateConfig",
    "GateInputError",
    "GateReport",
    "ValidationSet",
    "load_float_reference",
    "load_validation_set",
    "validate_model",
]
