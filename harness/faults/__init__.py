"""Fault drivers, one module per kind, and the registry that builds one from a scenario fault
(the specs they drive are in `harness.specs.faults`)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from harness.faults.base import FaultContext, FaultDriver
from harness.faults.flap import FlapDriver
from harness.faults.jetstream import JetStreamDriver
from harness.faults.node_kill import NodeKillDriver
from harness.faults.node_pause import NodePauseDriver
from harness.faults.partition import PartitionDriver
from harness.faults.poison import PoisonDriver
from harness.faults.process import ProcessDriver
from harness.faults.proxy_down import ProxyDownDriver
from harness.faults.router_hook import RouterHookDriver
from harness.faults.stepdown import StepdownDriver
from harness.faults.storage import StorageDamageDriver
from harness.faults.toxic import ToxicDriver
from harness.specs.faults import Fault

DRIVERS: dict[str, type[FaultDriver]] = {
    d.kind: d
    for d in (
        ToxicDriver,
        ProxyDownDriver,
        FlapDriver,
        RouterHookDriver,
        JetStreamDriver,
        ProcessDriver,
        PoisonDriver,
        NodeKillDriver,
        NodePauseDriver,
        PartitionDriver,
        StepdownDriver,
        StorageDamageDriver,
    )
}
_FAULT = TypeAdapter(Fault)


def driver_for(spec: Any, ctx: FaultContext, key: str, state: dict | None = None) -> FaultDriver:
    """The driver for a scenario fault (a model, or its JSON form from the journal)."""
    if isinstance(spec, dict):
        spec = _FAULT.validate_python(spec)
    try:
        cls = DRIVERS[spec.kind]
    except KeyError:
        raise ValueError(f"no driver for fault kind {spec.kind!r}") from None
    return cls(spec, ctx, key, state)
