"""A signal to a component of the local stack: pause (SIGSTOP), stop (SIGTERM) or kill (SIGKILL)."""

from __future__ import annotations

import os
import signal
from typing import Any

from harness.errors import HarnessError
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent, Stack
from harness.specs.faults import ProcessFault
from harness.stack.process import process_state as _state


class ProcessDriver(FaultDriver):
    kind = "process"
    spec_model = ProcessFault
    through_toxiproxy = False
    spec: ProcessFault

    async def capable(self) -> str | None:
        try:
            self._stack().record(self.spec.component)
        except HarnessError as exc:  # FaultNotInEffect or StackError: the reason
            return str(exc)
        return None

    def _stack(self) -> Stack:
        if self.ctx.stack is None or self.ctx.target.kind != "local":
            raise FaultNotInEffect(
                f"process faults need a local stack; target {self.ctx.target.name} is external"
            )
        return self.ctx.stack

    async def prepare(self) -> None:
        record = self._stack().record(self.spec.component)
        self.state["pid"] = record.pid

    async def apply(self) -> None:
        stack = self._stack()
        pid = stack.record(self.spec.component).pid
        if self.spec.action == "pause":
            os.killpg(pid, signal.SIGSTOP)
        elif self.spec.action == "kill":
            os.killpg(pid, signal.SIGKILL)
            stack.stop_component(self.spec.component)  # reap, prove gone
        else:
            stack.stop_component(self.spec.component)

    async def read_back(self) -> dict[str, Any]:
        record = self._stack().record(self.spec.component)
        state = _state(record.pid)
        if self.spec.action == "pause":
            if state != "T":
                raise FaultNotInEffect(f"{self.spec.component} pid {record.pid} state {state}")
        elif record.alive():
            raise FaultNotInEffect(f"{self.spec.component} pid {record.pid} still running")
        return {"component": self.spec.component, "pid": record.pid, "proc_state": state}

    async def remove(self) -> None:
        stack = self._stack()
        record = stack.record(self.spec.component)
        if self.spec.action == "pause" and record.alive():
            os.killpg(record.pid, signal.SIGCONT)
        if not record.alive():
            await stack.start_component(self.spec.component)

    async def prove_gone(self) -> dict[str, Any]:
        record = self._stack().record(self.spec.component)
        state = _state(record.pid)
        if not record.alive() or state == "T":
            raise FaultStillPresent(f"{self.spec.component} pid {record.pid} state {state}")
        return {"component": self.spec.component, "pid": record.pid, "proc_state": state}

    async def fallback(self) -> None:
        await self.remove()
