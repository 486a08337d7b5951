"""Service errors: the caller asked for something that cannot be done. The API turns each into a 4xx."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ServiceError):
    status_code = 400


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class Unprocessable(ServiceError):
    status_code = 422


class Unavailable(ServiceError):
    """A part the server depends on (the broker) failed; the request changed nothing and may be retried."""

    status_code = 503
