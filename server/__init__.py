"""tinyfleet fleet server."""
