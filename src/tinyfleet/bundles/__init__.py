"""tinyfleet bundles: the signed, atomic update unit (format, signing, building, verification).

The byte layout is specified in docs/bundle-format.md.
"""

from .builder import build_bundle
from .components import (
    Calibration,
    ChannelCalibration,
    ClassThreshold,
    ComponentType,
    HealthVectors,
    Thresholds,
)
from .errors import BundleError, ComponentFormatError, KeyFileError
from .format import Bundle, Component, bundle_digest, content_digest, parse_bundle, parse_meta
from .manifest import Deployment, DType, Manifest, ModelContract, Provenance, TensorSpec
from .signing import TrustedKeys, generate_private_key, key_id, load_private_key, load_public_key
from .verify import StreamVerifier, VerifyPolicy, verify_bundle

__all__ = [
    "Bundle",
    "BundleError",
    "Calibration",
    "ChannelCalibration",
    "ClassThreshold",
    "Component",
    "ComponentFormatError",
    "ComponentType",
    "DType",
    "Deployment",
    "HealthVectors",
    "KeyFileError",
    "Manifest",
    "ModelContract",
    "Provenance",
    "StreamVerifier",
    "TensorSpec",
    "Thresholds",
    "TrustedKeys",
    "VerifyPolicy",
    "build_bundle",
    "bundle_digest",
    "content_digest",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_bundle",
    "parse_meta",
    "verify_bundle",
]
