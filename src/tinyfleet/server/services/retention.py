"""Raw telemetry is kept for a retention period; aggregates and drift scores are kept for good."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col

from tinyfleet.server.db.models import TelemetryRecord


def purge_telemetry(session: Session, now: float, retention_s: float) -> int:
    result = session.exec(delete(TelemetryRecord).where(col(TelemetryRecord.received_at) < now - retention_s))  # type: ignore[call-overload]
    session.commit()
    return int(result.rowcount or 0)
