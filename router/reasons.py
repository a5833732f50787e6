"""Client errors → the bounded NATS `reason` vocabulary (catalogue §5.5) and publish error types.

One mapping for every operation, so the same failure carries the same label on every metric.
"""

from __future__ import annotations

import asyncio
import errno

import nats.errors
import nats.js.errors

from router.faults import InjectedFault


class NotConnected(Exception):
    """The router is between connections; the operation was not attempted on the wire."""


def reason_of(exc: BaseException) -> str:
    """Map a client error onto the bounded NATS `reason` vocabulary (catalogue §5.5)."""
    if isinstance(exc, InjectedFault):
        return exc.reason
    if isinstance(exc, NotConnected):
        return "not_connected"
    if isinstance(exc, nats.js.errors.NotFoundError):
        if exc.err_code == 10014 or "consumer" in (exc.description or ""):
            return "consumer_not_found"
        return "stream_not_found"
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return "stream_not_found"
    if isinstance(exc, nats.js.errors.ServiceUnavailableError):
        return "no_responders"
    if isinstance(exc, nats.errors.NoRespondersError):
        return "no_responders"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, nats.errors.AuthorizationError):
        return "authorization"
    if isinstance(exc, nats.errors.InvalidUserCredentialsError):
        return "auth_failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(
        exc,
        nats.errors.ConnectionClosedError
        | nats.errors.StaleConnectionError
        | nats.errors.ConnectionReconnectingError
        | nats.errors.ConnectionDrainingError
        | nats.errors.OutboundBufferLimitError
        | ConnectionError
        | EOFError,
    ):
        return "connection_closed"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no_route"
        if exc.errno == errno.ECONNREFUSED:
            return "connection_refused"
        return "connection_closed"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc:
        return reason_of(cause)
    if isinstance(exc, nats.errors.NoServersError):
        return "connection_refused"
    return "other"


def error_type_of(reason: str) -> str:
    """Publish error classes of `router_nats_publish_errors_total`."""
    if reason == "timeout":
        return "timeout"
    if reason in ("connection_closed", "connection_refused", "not_connected", "no_route"):
        return "connection"
    if reason in ("stream_not_found", "no_responders"):
        return "broker_error"
    return "unknown"
