"""Fault hook: arm failures on NATS operations a network fault cannot single out (§6.11)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from router.metrics import NATS_REASONS

OPERATIONS = ("connect", "publish", "publish_with_ack", "ack", "nak", "subscribe")
MODES = ("error", "timeout", "delay", "intermittent")


class InjectedFault(Exception):
    """Raised in place of a NATS operation; `reason` becomes the failure's metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"injected fault: {reason}")
        self.reason = reason


class FaultSpecError(ValueError):
    """A fault specification the hook refuses (HTTP 400)."""


@dataclass
class Fault:
    """One armed fault: the shape of `router_nats_fault_injection` ({error,R}, timeout, {delay,Ms},
    {intermittent,Fault,P})."""

    mode: str
    reason: str = "other"
    ms: float = 0.0
    probability: float = 1.0
    inner: Fault | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any], *, nested: bool = False) -> Fault:
        if not isinstance(spec, dict):
            raise FaultSpecError("fault must be a JSON object")
        mode = spec.get("mode")
        if mode not in MODES:
            raise FaultSpecError(f"mode must be one of {', '.join(MODES)}")
        if mode == "error":
            reason = spec.get("reason", "other")
            if reason not in NATS_REASONS:
                raise FaultSpecError(f"reason must be one of {', '.join(NATS_REASONS)}")
            return cls(mode, reason=reason)
        if mode == "timeout":
            return cls(mode, reason="timeout", ms=_number(spec, "ms", 0.0, minimum=0))
        if mode == "delay":
            return cls(mode, ms=_number(spec, "ms", None, minimum=0))
        if nested:
            raise FaultSpecError("intermittent faults cannot be nested")
        probability = _number(spec, "probability", None, minimum=0)
        if probability > 1:
            raise FaultSpecError("probability must be within 0..1")
        inner = Fault.parse(spec.get("fault", {"mode": "error", "reason": "other"}), nested=True)
        return cls(mode, probability=probability, inner=inner)

    def describe(self) -> dict[str, Any]:
        if self.mode == "error":
            return {"mode": "error", "reason": self.reason}
        if self.mode in ("timeout", "delay"):
            return {"mode": self.mode, "ms": self.ms}
        assert self.inner is not None
        return {
            "mode": "intermittent",
            "probability": self.probability,
            "fault": self.inner.describe(),
        }


def _number(spec: dict[str, Any], key: str, default: float | None, *, minimum: float) -> float:
    value = spec.get(key, default)
    if value is None:
        raise FaultSpecError(f"{key} is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise FaultSpecError(f"{key} must be a number >= {minimum}")
    return float(value)


@dataclass
class _Armed:
    fault: Fault
    calls: int = 0
    injected: int = 0


@dataclass
class FaultHook:
    """Per-operation armed faults. Disabled hooks never inject (and the HTTP API refuses)."""

    enabled: bool = False
    _armed: dict[str, _Armed] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def arm(self, op: str, spec: dict[str, Any]) -> Fault:
        if op not in OPERATIONS:
            raise FaultSpecError(f"op must be one of {', '.join(OPERATIONS)}")
        fault = Fault.parse(spec)
        self._armed[op] = _Armed(fault)
        return fault

    def clear(self, op: str | None = None) -> None:
        if op is None:
            self._armed.clear()
        else:
            self._armed.pop(op, None)

    def snapshot(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "faults": {
                op: {**armed.fault.describe(), "calls": armed.calls, "injected": armed.injected}
                for op, armed in self._armed.items()
            },
        }

    async def apply(self, op: str, op_timeout: float) -> None:
        """Before operation `op`: raise InjectedFault, sleep, or return to let it run."""
        armed = self._armed.get(op) if self.enabled else None
        if armed is None:
            return
        armed.calls += 1
        fault = armed.fault
        if fault.mode == "intermittent":
            if self._rng.random() >= fault.probability:
                return
            assert fault.inner is not None
            fault = fault.inner
        armed.injected += 1
        if fault.mode == "delay":
            await asyncio.sleep(fault.ms / 1000.0)
            return
        if fault.mode == "timeout":
            # A timeout costs the caller its full wait, like a server that never answers.
            await asyncio.sleep(fault.ms / 1000.0 if fault.ms else op_timeout)
        raise InjectedFault(fault.reason)
