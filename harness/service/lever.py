"""The safety lever: one persistent switch that stops everything and keeps it stopped.

Engaging it (an admin or a `safety` token, through the API, the UI's button or `harness lever
engage`; or a global guard tripping) records it in the store first — from that moment every new
run and every scheduled fire is refused — then runs the emergency stop (every run cancelled,
every fault on every known target healed and read back). It stays engaged across restarts
until an admin releases it with a reason. Every change is audited.

A global guard (`lever_guards` in the service config: an alert or PromQL stop condition, e.g.
the production paging alert) is checked every `lever_guard_interval` against every known
target's Prometheus and Alertmanager; when one trips the lever engages by itself.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog

from harness.config import Target
from harness.errors import describe
from harness.service import guards
from harness.service.manager import RunManager
from harness.service.schedules import GuardSpec
from harness.service.store import Audit, Store

log = structlog.get_logger("service.lever")


class Lever:
    def __init__(self, store: Store, manager: RunManager, targets: Callable[[], list[Target]]):
        self.store = store
        self.manager = manager
        self.targets = targets
        self._state = self._load()

    def _load(self) -> dict[str, Any]:
        row = self.store.lever() or {"engaged": 0, "at": None, "by": "", "reason": ""}
        return {"engaged": bool(row["engaged"]), "at": row["at"], "by": row["by"],
                "reason": row["reason"]}  # fmt: skip

    def state(self) -> dict[str, Any]:
        return dict(self._state)

    @property
    def engaged(self) -> bool:
        return self._state["engaged"]

    def refusal(self) -> str | None:
        """Why no run may start now, or None."""
        if not self.engaged:
            return None
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self._state["at"]))
        return (f"the safety lever is engaged (by {self._state['by']} at {at} UTC: "
                f"{self._state['reason']}); an admin must release it")  # fmt: skip

    async def engage(self, by: str, reason: str, audit: Audit) -> dict[str, Any]:
        """Refuse from now on (persisted, audited before the stop starts), then stop all."""
        await anyio.to_thread.run_sync(lambda: self.store.set_lever(True, by, reason, audit))
        self._state = {"engaged": True, "at": time.time(), "by": by, "reason": reason}
        log.warning("lever_engaged", by=by, reason=reason)
        stopped = await self.manager.stop_all(self.targets(), f"safety lever ({by})")
        return {"lever": self.state(), "stop_all": stopped}

    async def release(self, by: str, reason: str, audit: Audit) -> dict[str, Any]:
        await anyio.to_thread.run_sync(lambda: self.store.set_lever(False, by, reason, audit))
        self._state = {"engaged": False, "at": time.time(), "by": by, "reason": reason}
        log.warning("lever_released", by=by, reason=reason)
        return {"lever": self.state()}

    async def watch(
        self,
        conditions: list[GuardSpec],
        interval: float,
        check: Callable[[list[GuardSpec], list[Target]], Awaitable[guards.Trip | None]] = (
            guards.check_once
        ),
    ) -> None:
        """Engage the lever when a global guard trips (checked while it is released)."""
        while True:
            if not self.engaged and conditions:
                try:
                    trip = await check(conditions, self.targets())
                except Exception as exc:
                    log.warning("lever_guard_failed", error=describe(exc))
                    trip = None
                if trip is not None and not trip.unevaluable:
                    by = f"guard:{trip.guard}"
                    reason = f"global guard {trip.guard} tripped on {trip.target}: {trip.detail}"
                    audit = Audit(by, "lever.engage", trip.target, detail=reason)
                    await self.engage(by, reason, audit)
                elif trip is not None:
                    log.warning("lever_guard_blind", **trip.document())
            await anyio.sleep(interval)
