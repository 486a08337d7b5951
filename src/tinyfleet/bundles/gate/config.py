"""The gate's thresholds: what a model must reach to be signed (defaults documented in docs/model-gate.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import GateInputError

MAX_GOLDEN_VECTORS = 64  # the health-vectors component's limit (docs/bundle-format.md)


@dataclass(frozen=True)
class GateConfig:
    min_accuracy: float = 0.90  # TFLM accuracy on the validation set
    max_accuracy_drop: float = 0.02  # float reference accuracy minus TFLM accuracy
    max_saturation: float = 0.02  # a layer is flagged above this share of activations at an int8 limit
    max_agreement_lsb: int = 1  # largest allowed |TFLite - TFLM| on any output value, in int8 steps
    max_disagreement: float = 0.01  # largest allowed share of output values that differ at all
    golden_vectors: int = 8  # K, stratified by class
    arena_limit_bytes: int = 16 * 1024 * 1024  # arena handed to TFLM on the host; more counts as too large
    tflm_timeout_s: float = 600.0  # a TFLM run (load, arena, validation set) taking longer fails tflm_runs

    def __post_init__(self) -> None:
        for name in ("min_accuracy", "max_accuracy_drop", "max_saturation", "max_disagreement"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise GateInputError(f"gate config: {name} must be within 0..1, got {v}")
        if not 0 <= self.max_agreement_lsb <= 255:
            raise GateInputError(f"gate config: max_agreement_lsb must be within 0..255, got {self.max_agreement_lsb}")
        if not 1 <= self.golden_vectors <= MAX_GOLDEN_VECTORS:
            raise GateInputError(f"gate config: golden_vectors must be within 1..{MAX_GOLDEN_VECTORS}")
        if not self.tflm_timeout_s > 0:
            raise GateInputError("gate config: tflm_timeout_s must be > 0")
        if self.arena_limit_bytes < 1024:
            raise GateInputError("gate config: arena_limit_bytes must be at least 1024")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
