"""JetStream admin faults: the router's durable consumer deleted (and kept deleted while held).

The router re-creates its consumer after a few failed binds; holding the fault deletes it
again whenever it reappears, so the router sees subscribe failures for the whole duration.
Healing re-creates the consumer from the configuration saved before the first deletion.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from nats.js.api import ConsumerConfig, DeliverPolicy

from harness.errors import NatsAdminError
from harness.faults.base import FaultDriver, FaultNotInEffect, FaultStillPresent
from harness.nats_admin import NatsAdmin
from harness.specs.faults import JetStreamFault

HOLD_INTERVAL = 0.5


class JetStreamDriver(FaultDriver):
    kind = "jetstream"
    spec_model = JetStreamFault
    through_toxiproxy = False
    spec: JetStreamFault

    async def capable(self) -> str | None:
        try:
            info = await self._info()
        except NatsAdminError as exc:
            return str(exc)
        if info is None:
            return f"consumer {self.spec.consumer} of stream {self.spec.stream} does not exist"
        return None

    def _admin(self) -> NatsAdmin:
        """Straight to NATS, not through the router's proxy."""
        return NatsAdmin(self.ctx.target.nats_url, name="harness-fault")

    async def _info(self) -> Any | None:
        return await self._admin().consumer_info(self.spec.stream, self.spec.consumer)

    async def prepare(self) -> None:
        info = await self._info()
        if info is None:
            raise FaultNotInEffect(
                f"consumer {self.spec.consumer} of stream {self.spec.stream} does not exist"
            )
        self.state["config"] = info.config.as_dict()
        self.state["created"] = str(info.created)
        self.state["ack_floor"] = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0

    async def _delete(self) -> bool:
        return await self._admin().delete_consumer(self.spec.stream, self.spec.consumer)

    async def apply(self) -> None:
        await self._delete()
        self.state["deletions"] = 1

    async def read_back(self) -> dict[str, Any]:
        info = await self._info()
        if info is not None and str(info.created) == self.state.get("created"):
            raise FaultNotInEffect(f"consumer {self.spec.consumer} was not deleted")
        return {
            "stream": self.spec.stream,
            "consumer": self.spec.consumer,
            "present": info is not None,
            "recreated_by_router": info is not None,
        }

    async def hold(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await anyio.sleep(min(HOLD_INTERVAL, max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            try:
                deleted = await self._delete()
            except NatsAdminError as exc:  # NATS away for a moment: keep holding, say so
                self.state.setdefault("hold_errors", []).append(str(exc))
                continue
            if deleted:
                self.state["deletions"] = self.state.get("deletions", 1) + 1

    async def remove(self) -> None:
        """Re-create the consumer as it was, resuming after its last acknowledged message
        (what a restored consumer does), not replaying the whole stream."""
        if await self._info() is not None:
            return
        saved = dict(self.state["config"])
        saved.pop("opt_start_time", None)
        saved["deliver_policy"] = DeliverPolicy.BY_START_SEQUENCE.value
        saved["opt_start_seq"] = int(self.state.get("ack_floor", 0)) + 1
        await self._admin().add_consumer(self.spec.stream, ConsumerConfig.from_response(saved))

    async def prove_gone(self) -> dict[str, Any]:
        info = await self._info()
        if info is None:
            raise FaultStillPresent(f"consumer {self.spec.consumer} is still missing")
        return {"stream": self.spec.stream, "consumer": self.spec.consumer, "present": True}

    async def fallback(self) -> None:
        await self.remove()
