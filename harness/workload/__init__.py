"""The workload: its spec (`spec`), the pure delivery ledger (`ledger`) and the NATS driver
that publishes and taps (`driver`).

The spec and the ledger import no network client; the driver (nats, httpx) is imported only
when `WorkloadDriver` or `request_body` is asked for, so loading a scenario stays free of I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.workload.ledger import DeadLettered, Entry, Latency, Ledger, LedgerSummary, ServerView
from harness.workload.spec import Kind, WorkloadMix, WorkloadSpec

if TYPE_CHECKING:
    from harness.workload.driver import WorkloadDriver, request_body

__all__ = [
    "DeadLettered",
    "Entry",
    "Kind",
    "Latency",
    "Ledger",
    "LedgerSummary",
    "ServerView",
    "WorkloadDriver",
    "WorkloadMix",
    "WorkloadSpec",
    "request_body",
]


def __getattr__(name: str) -> Any:
    if name in ("WorkloadDriver", "request_body"):
        from harness.workload import driver

        return getattr(driver, name)
    raise AttributeError(f"module 'harness.workload' has no attribute {name!r}")
