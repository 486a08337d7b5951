"""A transaction the database aborted for concurrency alone is run again; any other error is not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from tinyfleet.server.db.retry import retry_transient


class DriverError(Exception):
    def __init__(self, sqlstate: str | None, text: str = "driver error") -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


def failing(times: int, orig: Exception):
    calls = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("UPDATE device ...", {}, orig)
        return "committed"

    return fn, calls


@pytest.mark.parametrize(
    "orig",
    [DriverError("40P01", "deadlock detected"), DriverError("40001"), DriverError(None, "database is locked")],
)
def test_transient_aborts_are_retried(orig: Exception) -> None:
    fn, calls = failing(2, orig)
    assert retry_transient(fn, base_delay_s=0.001) == "committed"
    assert len(calls) == 3


def test_other_errors_and_exhausted_retries_propagate() -> None:
    fn, calls = failing(1, DriverError("42P01", "relation does not exist"))
    with pytest.raises(OperationalError):
        retry_transient(fn, base_delay_s=0.001)
    assert len(calls) == 1
    fn, calls = failing(10, DriverError("40P01"))
    with pytest.raises(OperationalError):
        retry_transient(fn, attempts=3, base_delay_s=0.001)
    assert len(calls) == 3
