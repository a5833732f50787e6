"""One error hierarchy: everything the harness raises on purpose is a `HarnessError`.

Adapters (Prometheus, Alertmanager, the notification receiver, Toxiproxy, NATS, the router's
fault hook) raise their own subclass carrying the URL and what was tried, so a check never sees
an httpx or requests exception and can turn any adapter failure into an `error` verdict.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises deliberately."""


class AdapterError(HarnessError):
    """A component of the target could not be consulted; the message names URL and action."""


class PrometheusError(AdapterError):
    """Prometheus could not answer; the message names the URL, the query and the cause."""


class AlertmanagerError(AdapterError):
    """Alertmanager could not answer."""


class ReceiverError(AdapterError):
    """The notification receiver (webhook) could not answer."""


class ToxiproxyError(AdapterError):
    """The Toxiproxy server refused or failed a call."""


class NatsAdminError(AdapterError):
    """A JetStream admin request (consumer info, advisories) failed."""


def describe(exc: BaseException) -> str:
    """`Type: message`, or just the type when the message is empty."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
