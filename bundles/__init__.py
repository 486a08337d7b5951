"""tinyfleet bundles: the signed, atomic update unit (format, signing, building, verification)."""
