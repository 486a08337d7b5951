"""The gate's verdict: one result per check, with its figure, and the stable JSON form that gets signed.

`GateReport.to_json()` is deterministic (sorted keys, no paths or timestamps, floats as Python's shortest
round-trip form): the same
model, profile, deployment, data and config give identical bytes, so its SHA-256 can go in the manifest
(validation_report_digest).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..components import HealthVectors
from ..manifest import TensorSpec

REPORT_VERSION = 1


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    figure: str  # the measured figure against its limit, one line
    detail: str = ""  # why it failed or was skipped, or what was flagged
    skipped: bool = False  # not evaluated (no validation set, or a check it depends on failed)
    data: dict[str, Any] = field(default_factory=dict)  # the figures as numbers, for the JSON report

    @property
    def status(self) -> str:
        return "skip" if self.skipped else ("pass" if self.passed else "fail")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "figure": self.figure,
            "detail": self.detail,
            "data": self.data,
        }


def skipped(name: str, reason: str) -> CheckResult:
    return CheckResult(name, False, "not evaluated", reason, skipped=True)


def spec_json(s: TensorSpec) -> dict[str, Any]:
    return {"shape": list(s.shape), "dtype": s.dtype.name.lower(), "scale": s.scale, "zero_point": s.zero_point}


@dataclass
class GateReport:
    checks: list[CheckResult]
    input: TensorSpec
    output: TensorSpec
    arena_bytes: int  # measured in TFLM; 0 when TFLM could not load the model
    macs: int
    golden: HealthVectors | None
    context: dict[str, Any]  # model digest, profile, deployment, config, data digests: what was checked
    strata: dict[str, dict[str, Any]] = field(default_factory=dict)  # "tag=value" -> samples, accuracy

    @property
    def passed(self) -> bool:
        return not self.failures()

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed and not c.skipped]

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        golden = None
        if self.golden is not None:
            golden = {"count": len(self.golden.vectors), "sha256": hashlib.sha256(self.golden.encode()).hexdigest()}
        return _clean(
            {
                "report_version": REPORT_VERSION,
                "passed": self.passed,
                "checks": [c.to_json() for c in self.checks],
                "input": spec_json(self.input),
                "output": spec_json(self.output),
                "arena_bytes": self.arena_bytes,
                "macs": self.macs,
                "golden_vectors": golden,
                "strata": self.strata,
                **self.context,
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, allow_nan=False) + "\n"
