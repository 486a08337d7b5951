"""An expired bundle is refused with times people read: ISO 8601 UTC, not Unix seconds."""

from __future__ import annotations

import pytest

from tinyfleet.bundles import TrustedKeys, VerifyPolicy, generate_private_key, verify_bundle
from tinyfleet.bundles.errors import Expired

from ..server.srv_bundles import make_bundle


def test_expiry_is_reported_in_iso_8601_utc() -> None:
    key = generate_private_key()
    data = make_bundle(key, "exp-1", expires=1_800_000_000)
    keys = TrustedKeys.of([key.public_key()])
    with pytest.raises(Expired) as err:
        verify_bundle(data, keys, VerifyPolicy(now=1_800_000_060))
    assert str(err.value) == "Expired: bundle expired at 2027-01-15T08:00:00Z (now 2027-01-15T08:01:00Z)"
