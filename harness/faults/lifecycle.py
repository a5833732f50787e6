"""Inject and heal with guarantees: journal first, heal shielded with a timeout and a fallback.

Whatever happens to the run (an exception, Ctrl-C, SIGTERM), `heal` still runs to the end:
it is shielded from cancellation, bounded by a timeout, falls back to resetting Toxiproxy when
the normal removal fails or hangs, and clears the journal entry only once read-back shows the
fault gone. Entries a dead run left behind are healed by `heal_leftovers`.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import structlog

from harness.errors import HarnessError, describe
from harness.evidence.record import HealOutcome
from harness.faults import driver_for
from harness.faults.base import FaultContext, FaultDriver, FaultNotInEffect
from harness.faults.journal import Journal

log = structlog.get_logger("faults")


class FaultApplyError(HarnessError):
    """A fault could not be applied or shown in effect."""


__all__ = ["FaultApplyError", "FaultRunner", "HealOutcome"]


async def _attempt(step: str, timeout: float, call: Any) -> tuple[Any, str | None]:
    try:
        with anyio.fail_after(timeout):
            return await call(), None
    except TimeoutError:
        return None, f"{step}: no answer within {timeout:g}s"
    except Exception as exc:  # any failure means: try the next way
        return None, f"{step}: {type(exc).__name__}: {exc}"


class FaultRunner:
    """Applies and heals faults on one target, keeping its journal true."""

    def __init__(self, ctx: FaultContext, journal: Journal, *, timeout: float = 10.0):
        self.ctx = ctx
        self.journal = journal
        self.timeout = timeout

    def _timeout(self, driver: FaultDriver) -> float:
        """The bound of one step: the runner's, or more for a kind whose steps wait for a
        process to restart or a cluster to converge (its `timeout_floor`)."""
        return max(self.timeout, float(getattr(driver, "timeout_floor", 0.0)))

    async def inject(self, driver: FaultDriver, read_back_within: float = 5.0) -> dict[str, Any]:
        """Journal, apply, and poll read-back until it shows the fault; evidence returned.
        Whatever goes wrong is a FaultApplyError naming the step: the scenario then fails on
        its fault, never with a bare exception."""
        try:
            with anyio.fail_after(self._timeout(driver)):
                await driver.prepare()
        except Exception as exc:
            raise FaultApplyError(f"{driver.describe()}: could not prepare: {exc}") from exc
        self.journal.add(
            driver.key,
            {
                "kind": driver.kind,
                "spec": driver.spec.model_dump(mode="json"),
                "state": driver.state,
                "target": self.ctx.target.name,
            },
        )
        log.info("fault_apply", key=driver.key, kind=driver.kind)
        try:
            with anyio.fail_after(self._timeout(driver)):
                await driver.apply()
        except Exception as exc:
            raise FaultApplyError(f"{driver.describe()}: apply failed: {exc}") from exc
        deadline = time.monotonic() + read_back_within
        while True:
            try:
                with anyio.fail_after(self._timeout(driver)):
                    evidence = await driver.read_back()
                break
            except (FaultNotInEffect, HarnessError, TimeoutError) as exc:
                # not in effect yet, or the API did not answer (a loaded machine): ask again
                if time.monotonic() > deadline:
                    why = "not in effect" if isinstance(exc, FaultNotInEffect) else "read-back"
                    raise FaultApplyError(f"{driver.describe()}: {why}: {describe(exc)}") from exc
                await anyio.sleep(0.1)
        self.journal.update(driver.key, state=driver.state, applied_at=time.time())
        log.info("fault_in_effect", key=driver.key, kind=driver.kind)
        return evidence

    def heal_bound(self, driver: FaultDriver) -> float:
        """The longest `heal` can take: the removal, its read-back, the fallback and its
        read-back, each bounded by the step timeout."""
        return 4 * self._timeout(driver)

    async def heal(self, driver: FaultDriver) -> HealOutcome:
        """Remove the fault and prove it gone; never raises, never cancelled half-way."""
        started = time.monotonic()
        errors: list[str] = []
        timeout = self._timeout(driver)
        with anyio.CancelScope(shield=True):
            for method, undo in (("remove", driver.remove), ("fallback", driver.fallback)):
                _, error = await _attempt(method, timeout, undo)
                if error:
                    errors.append(error)
                evidence, error = await _attempt(
                    f"read-back after {method}", timeout, driver.prove_gone
                )
                if error is None:
                    self.journal.remove(driver.key)
                    outcome = HealOutcome(
                        key=driver.key,
                        kind=driver.kind,
                        healed=True,
                        method=method,
                        seconds=round(time.monotonic() - started, 3),
                        evidence=evidence,
                        errors=errors,
                        needs_rebuild=driver.needs_rebuild,
                    )
                    log.info("fault_healed", key=driver.key, kind=driver.kind, method=method)
                    return outcome
                errors.append(error)
                log.warning("fault_heal_attempt_failed", key=driver.key, method=method, error=error)
        log.error("fault_not_healed", key=driver.key, errors=errors)
        return HealOutcome(
            key=driver.key,
            kind=driver.kind,
            healed=False,
            method="failed",
            seconds=round(time.monotonic() - started, 3),
            errors=errors,
            needs_rebuild=driver.needs_rebuild,
        )

    async def heal_leftovers(self) -> list[HealOutcome]:
        """Heal every fault the journal still lists (a killed run's), oldest first."""
        outcomes = []
        for entry in self.journal.entries():
            try:
                driver = driver_for(entry["spec"], self.ctx, entry["key"], entry.get("state"))
            except ValueError as exc:
                outcomes.append(
                    HealOutcome(
                        key=entry["key"],
                        kind=entry.get("kind", "?"),
                        healed=False,
                        method="failed",
                        seconds=0.0,
                        errors=[f"the journal entry cannot be read back as a fault: {exc}"],
                    )
                )
                continue
            log.info("fault_leftover", key=entry["key"], kind=entry.get("kind"))
            outcomes.append(await self.heal(driver))
        return outcomes
