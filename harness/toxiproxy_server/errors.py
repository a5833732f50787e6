"""The API's error type: every failure a client can see, with the real server's status and text."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API turns into `{"error": message, "status": status}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_body(detail: str) -> ApiError:
    """A 400 worded like Go's `bad request body: <decode error>`."""
    return ApiError(400, f"bad request body: {detail}")


PROXY_NOT_FOUND = "proxy not found"
TOXIC_NOT_FOUND = "toxic not found"
PROXY_EXISTS = "proxy already exists"
TOXIC_EXISTS = "toxic already exists"
INVALID_STREAM = "stream was invalid, can be either upstream or downstream"
INVALID_TOXIC_TYPE = "invalid toxic type"
