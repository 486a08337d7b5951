"""Times as people read them: ISO 8601 in UTC, to the second (`2026-12-06T20:30:00Z`)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(ts: float | int) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # beyond datetime's years: the number is all there is
        return f"{ts} (Unix time)"
