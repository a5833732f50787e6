"""The adapters a run reaches its target through, grouped: Prometheus, Alertmanager, the
notification receiver, Toxiproxy, the stream reader (data loss) and the endpoints' health
probe. `harness.testing` has fakes with the same shape, so the run path is unit-tested without
a stack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from harness.alertmanager import AlertmanagerAPI
from harness.config import Target
from harness.notifications import ReceiverAPI
from harness.probes import ProbeResult
from harness.prometheus import PrometheusAPI
from harness.readback import StreamReader
from harness.target_check import check_target
from harness.toxiproxy_client import ToxiproxyClient

HealthProbe = Callable[[], Awaitable[list[ProbeResult]]]


@dataclass
class Adapters:
    """One target's components as the run consults them."""

    prometheus: PrometheusAPI
    alertmanager: AlertmanagerAPI
    receiver: ReceiverAPI | None
    toxiproxy: ToxiproxyClient
    health: HealthProbe
    """Every endpoint probed (`harness.target_check.check_target`); never raises."""
    streams: StreamReader
    """Reads a stream back independently of the router (the data-loss check)."""

    @classmethod
    def for_target(cls, target: Target) -> Adapters:
        return cls(
            prometheus=PrometheusAPI(target.prometheus_url),
            alertmanager=AlertmanagerAPI(target.alertmanager_url),
            receiver=ReceiverAPI(target.webhook_url) if target.webhook_url else None,
            toxiproxy=ToxiproxyClient(target.toxiproxy_url),
            health=lambda: check_target(target),
            streams=StreamReader.for_target(target),
        )
