"""Retrying a whole transaction when the database aborted it only because of concurrency.

PostgreSQL aborts one of two transactions that wait on each other's row locks (deadlock_detected, 40P01)
and, at stricter isolation, ones that cannot be serialized (40001); SQLite reports "database is locked"
when a writer holds it too long. None of these says the transaction was wrong: running it again succeeds.
The function passed in must be one whole transaction (it opens its own session and commits at its end), so
a retry starts from nothing committed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError

log = logging.getLogger("tinyfleet.server.db")

T = TypeVar("T")
TRANSIENT_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure


def is_transient(exc: OperationalError) -> bool:
    if getattr(exc.orig, "sqlstate", None) in TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)


def retry_transient(fn: Callable[[], T], attempts: int = 6, base_delay_s: float = 0.02) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = base_delay_s * (2 ** (attempt - 1)) * (1 + random.random())
            log.info("transaction aborted by the database (%s); retry %d in %.0f ms", exc.orig, attempt, delay * 1e3)
            time.sleep(delay)
    raise AssertionError("unreachable")
