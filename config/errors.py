"""Domain exceptions shared by the apps; the API maps them to HTTP codes."""

from __future__ import annotations


class DomainError(Exception):
    http_status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class Conflict(DomainError):
    http_status = 409
    code = "conflict"


class Unavailable(DomainError):
    http_status = 503
    code = "unavailable"
