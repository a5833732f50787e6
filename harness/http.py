"""The harness's HTTP clients, all sharing one TLS context.

httpx builds a fresh TLS context (reading the whole CA bundle: tens of ms) for every client it
creates. The alert pollers open a short-lived client per request, several times a second per
slot: with three slots that was 72 % of the orchestrator's CPU samples. Clients stay
short-lived, so no connection pool outlives the event loop it was made in; only the context is
shared (an `ssl.SSLContext` may wrap any number of connections).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def async_client(timeout: float) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with httpx's defaults (certifi, SSL_CERT_FILE/DIR honoured) and
    the shared TLS context."""
    return httpx.AsyncClient(timeout=timeout, verify=_tls())
